#!/usr/bin/python3
"""Latency by the spell the machine is in: ONNX Runtime and one or more Tessera builds on one
model, each round classified by what the two CPUs share at the time.

    spells.py --tessera BUILD/tessera[,OTHER/tessera...] --model NAME [--models DIR]
              [--cache DIR] [--probe BUILD/bench/vcpu_probe] [--threads 2] [--rounds 60]
              [--iterations 40] [--no-ort]

On a shared virtual machine the two vCPUs do not stay put: for spells of seconds to minutes
they sit on different cores of one die (a cache line crosses between them in 25-45 ns), on
different dies (150-200 ns), or on the two hardware threads of one core (two multiply-add
loops together run at half the rate of one). Two-thread latency differs by up to 1.7x between
these spells, so a median over rounds says more about which spells the rounds fell in than
about the code. Each round here runs bench/vcpu_probe (build/bench/vcpu_probe) before and
after the runs it times (ONNX Runtime through bench/ort_run.js, and `tessera bench --json` of
each build, in a shuffled order) and keeps the round only when both probes agree on the spell:

- `one die`: hand-over under 100 ns, the two loops together at 75% or more of one alone;
- `two dies`: hand-over over 100 ns;
- `one core`: hand-over under 100 ns, the loops together under 75%.

Prints, per spell, the rounds kept and each side's median of per-round medians, with
ORT/Tessera for each build. Installs onnxruntime-node and builds the models as compare.py does.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (ensure_ort, run_ort, run_tessera, probe_spell, SPELLS)

def probe_or_exit(path):
    got = compare.probe_spell(path)
    if got is None:
        sys.exit(f"spells: {path} did not run (build it with ninja: bench/vcpu_probe)")
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tessera", required=True, help="comma-separated paths to tessera CLIs")
    ap.add_argument("--model", required=True, help="a model of the zoo (models.json)")
    ap.add_argument("--cache", default=compare.DEFAULT_CACHE)
    ap.add_argument("--models", help="model folder (default: CACHE/models)")
    ap.add_argument("--probe", help="vcpu_probe (default: bench/vcpu_probe beside the first CLI)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-ort", action="store_true", help="time only the Tessera builds")
    args = ap.parse_args()

    clis = [os.path.abspath(c) for c in args.tessera.split(",")]
    probe_path = args.probe or os.path.join(os.path.dirname(clis[0]), "bench", "vcpu_probe")
    cache = os.path.abspath(args.cache)
    models_dir = os.path.abspath(args.models or os.path.join(cache, "models"))
    env = prefix = None
    if not args.no_ort:
        prefix = compare.ensure_ort(cache)
        env = dict(os.environ, NODE_PATH=os.path.join(prefix, "node_modules"))
    model = next(iter(compare.zoo_models(models_dir, prefix, args.model)), None)
    if model is None:
        sys.exit(f"spells: no model '{args.model}' in {models_dir}/models.json")
    feeds = [f"{k}={v}" for k, v in sorted(model["inputs"].items())]

    sides = ([] if args.no_ort else ["ort"]) + clis
    kept = {s: {side: [] for side in sides} for s in compare.SPELLS}
    dropped = 0
    scratch = tempfile.mkdtemp(prefix="tsr-spells-")
    for r in range(args.rounds):
        before = probe_or_exit(probe_path)
        order = sides[:]
        random.shuffle(order)
        got = {}
        for side in order:
            if side == "ort":
                got[side] = compare.run_ort(model, feeds, args.threads,
                                            args.iterations + args.warmup, env, scratch)
            else:
                got[side] = compare.run_tessera(side, model, feeds, args.threads,
                                                args.iterations, args.warmup)
        after = probe_or_exit(probe_path)
        if before != after:
            dropped += 1
            continue
        for side in sides:
            kept[before][side].append(got[side]["median_ms"])
        print(f"spells: round {r + 1}: {before}: " + ", ".join(
            f"{'ORT' if s == 'ort' else 'T' + str(clis.index(s) + 1)} {got[s]['median_ms']:.2f}"
            for s in sides), file=sys.stderr)

    names = [] if args.no_ort else ["ORT ms"]
    names += [f"Tessera {i + 1} ms" for i in range(len(clis))]
    if not args.no_ort:
        names += [f"ORT/Tessera {i + 1}" for i in range(len(clis))]
    print(f"\n{args.model}, {args.threads} thread(s), {args.rounds} rounds "
          f"({dropped} dropped: the spell changed during the round)\n")
    print("| spell | rounds | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for s in compare.SPELLS:
        rows = kept[s]
        n = len(rows[sides[0]])
        if not n:
            continue
        med = {side: statistics.median(rows[side]) for side in sides}
        cells = [f"{med[side]:.2f}" for side in sides]
        if not args.no_ort:
            cells += [f"{med['ort'] / med[c]:.2f}" for c in clis]
        print(f"| {s} | {n} | " + " | ".join(cells) + " |")
    for i, c in enumerate(clis):
        print(f"\nTessera {i + 1}: {c}")


if __name__ == "__main__":
    main()
