#!/usr/bin/python3
"""Where the time goes, Tessera against ONNX Runtime: per-node kernel times of one model, as a
markdown table by kind of node.

    node_minima.py --tessera BUILD/tessera --model NAME [--models DIR] [--cache DIR]
                   [--threads 1] [--rounds 8] [--iterations 10]

Each round runs both sides once, in a fresh process each, alternating which goes first:
`tessera bench --profile` and bench/ort_run.js with ONNX Runtime's profiler. A node's figure is
its mean time over one process's measured runs (after WARMUP runs that are not counted), the
lowest such mean of any round: on a shared machine, noise only ever adds, and the lowest mean of
many short kernels is far steadier than a whole run's median (compare.py gives those). Both
sides get the same statistic: Tessera's profile keeps each node's sum over the measured runs,
and ONNX Runtime's per-run times are averaged the same way here (the lowest single run of each
node would flatter it against Tessera's means). The nodes are grouped by kind, since the two
runtimes name and fuse them differently: a Conv by its window (kernel, stride, depthwise or
grouped) and input plane, anything else by operator. ONNX Runtime keeps some operations as
nodes of their own that Tessera fuses into the node before (an activation such as QuickGelu, a
squeeze-excitation Mul, Add): their rows show ONNX Runtime's time against none. Tessera's figures are its Conv with whatever it took in.
Where shape inference cannot tell a Conv's shapes in Tessera's graph (shapes computed at run
time, as ShuffleNet's Reshapes make them), its row says "shape unknown".

Needs onnxruntime-node in CACHE/npm and the models in DIR (compare.py installs and builds
both), and python3-onnx for the shapes of Tessera's nodes.
"""
import argparse
import collections
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (DEFAULT_CACHE)

WARMUP = 3  # runs of each process not counted, on both sides


def conv_kind(x, w, o):
    """A Conv's row: its window and input plane, from its input, weight and output shapes."""
    if len(x) != 4 or len(w) != 4 or len(o) != 4 or 0 in x or 0 in w or 0 in o:
        return "Conv (shape unknown)"
    if x[1] <= 4:
        return f"Conv stem {w[2]}x{w[3]} /{x[2] // o[2]}, {x[2]}x{x[3]}"
    groups = x[1] // w[1]
    what = "depthwise " if groups == x[1] and groups > 1 else "grouped " if groups > 1 else ""
    return f"Conv {what}{w[2]}x{w[3]} /{x[2] // o[2]}, {x[2]}x{x[3]}"


def tessera_minima(cli, model, feeds, threads, iterations, trace, best):
    cmd = [cli, "bench", model, "--threads", str(threads), "--warmup", str(WARMUP),
           "--iterations", str(iterations), "--profile", trace]
    for f in feeds:
        cmd += ["--input", f]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(trace) as f:
        data = json.load(f)
    for e in data["traceEvents"] if isinstance(data, dict) else data:
        if e.get("ph") == "X" and e.get("dur", 0) > 0:
            t = e["dur"] / 1000.0
            best[e["name"]] = min(best.get(e["name"], t), t)


def ort_minima(model, feeds, threads, runs, scratch, env, best, kinds):
    prefix = os.path.join(scratch, "ortprof")
    for old in glob.glob(prefix + "*.json"):
        os.remove(old)
    subprocess.run(["node", os.path.join(HERE, "ort_run.js"), model, scratch, "--threads",
                    str(threads), "--repeat", str(WARMUP + runs), "--profile", prefix] + feeds,
                   check=True, stdout=subprocess.DEVNULL, env=env)
    (path,) = glob.glob(prefix + "*.json")
    with open(path) as f:
        events = json.load(f)
    times = collections.defaultdict(list)  # a node's times in run order
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        a = e["args"]
        name = e["name"][: -len("_kernel_time")]
        times[name].append(e["dur"] / 1000.0)
        if name not in kinds:
            if a["op_name"] == "Conv" and len(a["input_type_shape"]) >= 2:
                shapes = [list(d.values())[0] for d in a["input_type_shape"][:2]]
                out = list(a["output_type_shape"][0].values())[0]
                kinds[name] = conv_kind(shapes[0], shapes[1], out)
            else:
                kinds[name] = a["op_name"]
    for name, ts in times.items():
        per_run = max(1, len(ts) // (WARMUP + runs))  # a node inside a loop runs several times
        measured = ts[WARMUP * per_run:] or ts
        t = sum(measured) / (len(measured) / per_run)
        best[name] = min(best.get(name, t), t)


def tessera_kinds(model, inputs):
    """Kinds of Tessera's nodes, by name, from shapes inferred with the inputs' actual shapes
    (a model may leave its image size open)."""
    import numpy as np
    import onnx
    from onnx import shape_inference

    m = onnx.load(model)
    for v in m.graph.input:
        if v.name in inputs:
            shape = np.load(inputs[v.name], mmap_mode="r").shape
            dims = v.type.tensor_type.shape.dim
            if len(dims) == len(shape):
                for d, n in zip(dims, shape):
                    d.ClearField("dim_param")
                    d.dim_value = n
    m = shape_inference.infer_shapes(m)
    shp = {}
    for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shp[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for i in m.graph.initializer:
        shp[i.name] = list(i.dims)
    kinds = {}
    for n in m.graph.node:
        if n.op_type == "Conv" and all(x in shp for x in (n.input[0], n.input[1], n.output[0])):
            kinds[n.name] = conv_kind(shp[n.input[0]], shp[n.input[1]], shp[n.output[0]])
        else:
            kinds[n.name] = n.op_type
    return kinds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tessera", required=True, help="path to the tessera CLI")
    ap.add_argument("--model", required=True, help="a model name from DIR/models.json")
    ap.add_argument("--cache", default=compare.DEFAULT_CACHE)
    ap.add_argument("--models", help="model folder (default: CACHE/models)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args()

    models_dir = args.models or os.path.join(args.cache, "models")
    with open(os.path.join(models_dir, "models.json")) as f:
        entry = next((m for m in json.load(f) if m["name"] == args.model), None)
    if not entry:
        sys.exit(f"node_minima: no model {args.model} in {models_dir}/models.json")
    feeds = [f"{k}={v}" for k, v in sorted(entry["inputs"].items())]
    env = dict(os.environ, NODE_PATH=os.path.join(args.cache, "npm", "node_modules"))
    scratch = tempfile.mkdtemp(prefix="tsr-minima-")
    ours, theirs, ort_kinds = {}, {}, {}
    try:
        for r in range(args.rounds):
            sides = ["tessera", "ort"] if r % 2 == 0 else ["ort", "tessera"]
            for side in sides:
                if side == "tessera":
                    tessera_minima(os.path.abspath(args.tessera), entry["file"], feeds,
                                   args.threads, args.iterations,
                                   os.path.join(scratch, "trace.json"), ours)
                else:
                    ort_minima(entry["file"], feeds, args.threads, args.iterations, scratch, env,
                               theirs, ort_kinds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    our_kinds = tessera_kinds(entry["file"], entry["inputs"])
    rows = collections.defaultdict(lambda: [0.0, 0, 0.0, 0])
    for name, t in ours.items():
        k = our_kinds.get(name, "other")
        rows[k][0] += t
        rows[k][1] += 1
    for name, t in theirs.items():
        k = ort_kinds.get(name, "other")
        rows[k][2] += t
        rows[k][3] += 1
    total_ours = sum(r[0] for r in rows.values())
    total_ort = sum(r[2] for r in rows.values())
    print(f"{args.model}, {args.threads} thread(s), {args.rounds} rounds of {args.iterations} "
          f"runs: summed per-node minima, Tessera {total_ours:.2f} ms, ONNX Runtime "
          f"{total_ort:.2f} ms\n")
    print("| kind | Tessera nodes | Tessera ms | ORT nodes | ORT ms | Tessera - ORT |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, (a, na, b, nb) in sorted(rows.items(), key=lambda kv: -(kv[1][0] - kv[1][2])):
        if a + b >= 0.01:
            print(f"| {k} | {na} | {a:.3f} | {nb} | {b:.3f} | {a - b:+.3f} |")


if __name__ == "__main__":
    main()
