#!/usr/bin/python3
"""Latency of Tessera against ONNX Runtime on the model zoo, as a markdown table.

    compare.py --tessera BUILD/tessera [--models DIR] [--cache DIR] [--threads 1,2]
               [--rounds 5] [--iterations 20] [--warmup 3] [--only NAME,...]
               [--gemm MxKxN,... | --gemm none] [--profile-dir DIR] [--json FILE]

Installs onnxruntime-node (pinned, --ignore-scripts) into CACHE/npm when missing, builds the
models with bench/make_models.py (cached in DIR, default CACHE/models), then, per model and
thread count, runs ONNX Runtime (bench/ort_run.js) and Tessera (`tessera bench --json`)
alternately for several rounds, each side a fresh process per round. Shared machines are noisy,
so each side's figure is the median of its per-round medians, and the table shows how far the
per-round medians spread. The first side alternates between rounds so neither always runs
after the other.

Columns: median latency of each side, ORT/Tessera (> 1: Tessera is faster), model load (ORT:
session creation; Tessera: model load plus session creation, which includes planning and weight
packing), and peak resident memory of each process (from wait4; node and the onnxruntime-node
module take about 50 MB of ONNX Runtime's figure before a model is loaded). The geometric mean of the ratios is given per thread count.
A last column, "per round", is the median over the rounds of each round's ORT/Tessera: the two
sides of one round run back to back, so a busy spell of the machine moves both; the ratio of
the medians (the fifth column, the one the targets are stated in) can instead swing when a
spell happens to cover more of one side's runs than the other's.

ort_run.js has no warm-up option: ONNX Runtime gets ITERATIONS + WARMUP runs and reports their
median, which the few slower first runs barely move. Tessera gets WARMUP runs plus its first run
unmeasured, then ITERATIONS measured.

Where bench/vcpu_probe is built (BUILD/bench/vcpu_probe beside the CLI), each round is
preceded by it and the spell the shared machine was in (spells.py: the two vCPUs on one die,
on two dies, or on one core) is counted per row and in all; two-thread medians differ by up
to 1.7x between spells, for both runtimes.

--gemm adds single-MatMul models ([M, K] x [K, N], weight constant) and reports GFLOP/s.
--profile-dir writes each model's per-operator table (`tessera bench --profile`) at the first
thread count.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_PACKAGE = "onnxruntime-node@1.30.0"
DEFAULT_GEMM = "64x768x3072,256x1024x1024,1024x1024x1024"
DEFAULT_CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                             "tessera-bench")


def ensure_ort(cache):
    prefix = os.path.join(cache, "npm")
    pkg = os.path.join(prefix, "node_modules", "onnxruntime-node", "package.json")
    want = ORT_PACKAGE.rsplit("@", 1)[1]
    have = None
    if os.path.exists(pkg):
        with open(pkg) as f:
            have = json.load(f).get("version")
    if have != want:
        print(f"compare: installing {ORT_PACKAGE} into {prefix}", file=sys.stderr)
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--prefix", prefix, ORT_PACKAGE], check=True, stdout=subprocess.DEVNULL)
    return prefix


# Peak resident memory comes from wait4() in this small launcher rather than in this script: a
# high-water mark survives exec, so a command forked straight from this Python process (numpy
# and onnx loaded) would report at least this process's size. The launcher runs with -S and
# imports only os and sys, so the floor it passes on is a few MB, below anything measured.
LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
sys.stderr.write("\\n@maxrss_kb %d\\n" % ru.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def zoo_models(models_dir, npm_prefix=None, only=None):
    """Builds the zoo's models (or those named in `only`, a comma-separated list) into
    models_dir with make_models.py, which keeps what is there, and returns their entries from
    models.json; a model that could not be built is left out, with a note."""
    make = [sys.executable, os.path.join(HERE, "make_models.py"), models_dir]
    if npm_prefix:
        make += ["--npm-prefix", npm_prefix]
    if only:
        make += ["--only", only]
    if subprocess.run(make).returncode != 0:
        print("compare: some models could not be built; going on with the others", file=sys.stderr)
    with open(os.path.join(models_dir, "models.json")) as f:
        models = json.load(f)
    return [m for m in models if m["name"] in only.split(",")] if only else models


SPELLS = ("one die", "two dies", "one core")


def probe_spell(path):
    """The spell bench/vcpu_probe finds the machine in: the two vCPUs on different dies (a
    cache line takes over 100 ns between them), on one core's two hardware threads (two
    multiply-add loops together under 75% of one alone's rate), or else on one die; None when
    the probe fails."""
    try:
        out = subprocess.run([path], capture_output=True, text=True, timeout=60)
        p = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    if p["pingpong_ns"] > 100:
        return "two dies"
    if p["fma_solo_gflops"] > 0 and p["fma_both_gflops"] < 0.75 * p["fma_solo_gflops"]:
        return "one core"
    return "one die"


def spell_counts(spells):
    return ", ".join(f"{spells.count(k)} {k}" for k in SPELLS if spells.count(k))


def run_measured(cmd, env=None, timeout=900):
    """Runs cmd; returns (returncode, stdout, stderr, peak RSS in MB or None)."""
    p = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
        return -9, out, err + f"\ntimed out after {timeout} s", None
    rss = None
    for line in err.splitlines():
        if line.startswith("@maxrss_kb "):
            rss = int(line.split()[1]) / 1024.0
    err = "\n".join(l for l in err.splitlines() if not l.startswith("@maxrss_kb "))
    return p.returncode, out, err, rss


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output: {text.strip()[-300:]}")


def run_ort(model, feeds, threads, runs, env, scratch):
    rc, out, err, rss = run_measured(
        ["node", os.path.join(HERE, "ort_run.js"), model["file"], scratch, "--threads",
         str(threads), "--repeat", str(runs)] + feeds, env=env)
    if rc != 0:
        raise RuntimeError(f"ONNX Runtime: {err.strip()[-400:]}")
    r = last_json(out)
    return {"median_ms": r["median_ms"], "load_ms": r["load_ms"], "rss_mb": rss}


def run_tessera(cli, model, feeds, threads, iterations, warmup):
    cmd = [cli, "bench", model["file"], "--threads", str(threads), "--iterations",
           str(iterations), "--warmup", str(warmup), "--json"]
    for feed in feeds:
        cmd += ["--input", feed]
    rc, out, err, rss = run_measured(cmd)
    if rc != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {rc}: {err.strip()[-400:]}")
    r = last_json(out)
    return {"median_ms": r["median_ms"], "load_ms": r["load_ms"], "rss_mb": rss}


def make_gemm(models_dir, spec):
    """A model with one MatMul: input [M, K] times a constant [K, N] (seeded), fixed input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = (int(v) for v in spec.lower().split("x"))
    name = f"matmul_{m}x{k}x{n}"
    path = os.path.join(models_dir, name + ".onnx")
    inp = os.path.join(models_dir, name + ".a.npy")
    if not (os.path.exists(path) and os.path.exists(inp)):
        rng = np.random.default_rng(m * 1000003 + k * 1009 + n)
        w = numpy_helper.from_array(rng.random((k, n), dtype=np.float32) - 0.5, "b")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"], name="matmul")], name,
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])], [w])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
        np.save(inp, rng.random((m, k), dtype=np.float32) - 0.5)
    return {"name": name, "file": path, "inputs": {"a": inp}, "flops": 2.0 * m * k * n}


def fmt(v, spec=".2f"):
    return "n/a" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tessera", required=True, help="path to the tessera CLI")
    ap.add_argument("--cache", default=DEFAULT_CACHE,
                    help="folder for onnxruntime-node and, by default, the models")
    ap.add_argument("--models", help="model folder (default: CACHE/models)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--only", help="comma-separated model names (default: the whole zoo)")
    ap.add_argument("--gemm", default=DEFAULT_GEMM,
                    help=f"MatMul sizes MxKxN (default {DEFAULT_GEMM}); 'none' to skip")
    ap.add_argument("--profile-dir", help="write per-operator profiles of Tessera here")
    ap.add_argument("--json", help="write every measurement here")
    args = ap.parse_args()

    cli = os.path.abspath(args.tessera)
    cache = os.path.abspath(args.cache)
    models_dir = os.path.abspath(args.models or os.path.join(cache, "models"))
    threads = [int(t) for t in args.threads.split(",")]
    prefix = ensure_ort(cache)
    env = dict(os.environ, NODE_PATH=os.path.join(prefix, "node_modules"))

    models = zoo_models(models_dir, prefix, args.only)
    if args.gemm != "none":
        models += [make_gemm(models_dir, s) for s in args.gemm.split(",")]

    probe = os.path.join(os.path.dirname(cli), "bench", "vcpu_probe")
    probe = probe if os.access(probe, os.X_OK) else None
    results = []
    scratch = tempfile.mkdtemp(prefix="tsr-compare-")
    load_start, t_start = os.getloadavg(), time.time()
    for m in models:
        feeds = [f"{k}={v}" for k, v in sorted(m["inputs"].items())]
        for t in threads:
            per = {"ort": [], "tessera": []}
            spells = []
            error = None
            for r in range(args.rounds):
                if probe:
                    spells.append(probe_spell(probe))
                order = ["ort", "tessera"] if r % 2 == 0 else ["tessera", "ort"]
                try:
                    for side in order:
                        if side == "ort":
                            per[side].append(run_ort(m, feeds, t, args.iterations + args.warmup,
                                                     env, scratch))
                        else:
                            per[side].append(run_tessera(cli, m, feeds, t, args.iterations,
                                                         args.warmup))
                except (RuntimeError, ValueError) as e:
                    error = str(e)
                    break
            row = {"model": m["name"], "threads": t, "rounds": per, "error": error,
                   "flops": m.get("flops"), "spells": spells}
            for side in per:
                runs = per[side]
                med = [x["median_ms"] for x in runs]
                row[side] = None if not runs else {
                    "median_ms": statistics.median(med),
                    "spread": (max(med) - min(med)) / statistics.median(med),
                    "load_ms": statistics.median(x["load_ms"] for x in runs),
                    "rss_mb": max((x["rss_mb"] or 0) for x in runs) or None}
            results.append(row)
            o, s = row["ort"], row["tessera"]
            print(f"compare: {m['name']} threads={t}: ORT {fmt(o and o['median_ms'])} ms, "
                  f"Tessera {fmt(s and s['median_ms'])} ms"
                  + (f" (rounds: {spell_counts(spells)})" if spells else "")
                  + (f"; ERROR {error}" if error else ""),
                  file=sys.stderr, flush=True)

    if args.profile_dir:
        os.makedirs(args.profile_dir, exist_ok=True)
        for m in models:
            cmd = [cli, "bench", m["file"], "--threads", str(threads[0]), "--iterations",
                   str(args.iterations), "--warmup", str(args.warmup), "--profile",
                   os.path.join(args.profile_dir, m["name"] + ".trace.json")]
            for k, v in sorted(m["inputs"].items()):
                cmd += ["--input", f"{k}={v}"]
            _, out, err, _ = run_measured(cmd)  # through the launcher, for a true PEAK_MB
            with open(os.path.join(args.profile_dir, m["name"] + ".txt"), "w") as f:
                f.write(f"$ {' '.join(cmd)}\n{out}{err}")

    print_tables(results, threads)
    load_end = os.getloadavg()
    print(f"\nMeasured in {(time.time() - t_start) / 60:.1f} min; load average (1, 5, 15 min) "
          f"{', '.join(f'{v:.1f}' for v in load_start)} at the start and "
          f"{', '.join(f'{v:.1f}' for v in load_end)} at the end, on {os.cpu_count()} CPUs.")
    every = [sp for r in results for sp in r["spells"]]
    if every:
        print(f"Spells of the rounds (bench/vcpu_probe before each): {spell_counts(every)}"
              + (f", {every.count(None)} unknown" if None in every else "") + ".")
    shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if any(r["error"] for r in results) else 0


def print_tables(results, threads):
    nets = [r for r in results if not r["flops"]]
    gemms = [r for r in results if r["flops"]]
    print("| model | threads | ORT ms | Tessera ms | ORT/Tessera | ORT load ms | Tessera load ms "
          "| ORT peak RSS MB | Tessera peak RSS MB | spread ORT / Tessera | per round |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in nets:
        o, s = r["ort"] or {}, r["tessera"] or {}
        ratio = (o["median_ms"] / s["median_ms"]) if o and s and not r["error"] else None
        r["ratio"] = ratio
        pairs = [a["median_ms"] / b["median_ms"]
                 for a, b in zip(r["rounds"]["ort"], r["rounds"]["tessera"])]
        r["round_ratio"] = statistics.median(pairs) if pairs and not r["error"] else None
        print(f"| {r['model']} | {r['threads']} | {fmt(o.get('median_ms'))} | "
              f"{fmt(s.get('median_ms')) if not r['error'] else 'error'} | {fmt(ratio)} | "
              f"{fmt(o.get('load_ms'), '.0f')} | {fmt(s.get('load_ms'), '.0f')} | "
              f"{fmt(o.get('rss_mb'), '.0f')} | {fmt(s.get('rss_mb'), '.0f')} | "
              f"{fmt(o.get('spread') and 100 * o['spread'], '.0f')}% / "
              f"{fmt(s.get('spread') and 100 * s['spread'], '.0f')}% | "
              f"{fmt(r['round_ratio'])} |")
    print()
    for t in threads:
        ratios = [r["ratio"] for r in nets if r["threads"] == t and r.get("ratio")]
        if ratios:
            geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            paired = [r["round_ratio"] for r in nets if r["threads"] == t and r.get("ratio")]
            geo_p = math.exp(sum(math.log(x) for x in paired) / len(paired))
            print(f"Geometric mean of ORT/Tessera at {t} thread{'s' if t > 1 else ''}: "
                  f"{geo:.2f} over {len(ratios)} models (per round: {geo_p:.2f})")
    if gemms:
        print()
        print("| MatMul M x K x N | threads | ORT ms | Tessera ms | ORT GFLOP/s | Tessera GFLOP/s "
              "| ORT/Tessera |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in gemms:
            o, s = r["ort"], r["tessera"] if not r["error"] else None
            o_ms, s_ms = o and o["median_ms"], s and s["median_ms"]
            size = r["model"].replace("matmul_", "").replace("x", " x ")
            print(f"| {size} | {r['threads']} | {fmt(o_ms, '.3f')} | {fmt(s_ms, '.3f')} | "
                  f"{fmt(o_ms and r['flops'] / o_ms / 1e6, '.1f')} | "
                  f"{fmt(s_ms and r['flops'] / s_ms / 1e6, '.1f')} | "
                  f"{fmt(o_ms / s_ms if o_ms and s_ms else None)} |")

if __name__ == "__main__":
    sys.exit(main())
