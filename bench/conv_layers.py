#!/usr/bin/python3
"""Single Conv layers through each of the CPU plugin's strategies that an environment variable
switches, alternately, as a markdown table: the measurements behind the cost rules in
devices/cpu/conv_wino.c (TESSERA_CPU_WINOGRAD), conv_pw.c (TESSERA_CPU_PWT) and
conv_nchwc_wino.c (TESSERA_CPU_WINOGRAD_TILE).

    conv_layers.py --tessera BUILD/tessera [--threads 1] [--rounds 3] [--iterations 100]
                   [--only NAME,...] [--dir DIR]

Each layer is a one-node ONNX model (a Conv with bias, random weights from a fixed seed, the
shapes of ResNet-50's, SqueezeNet's and EfficientNet-B0's layers), written to DIR (default: a
temporary folder). The `blocked_*` layers run in the channel-blocked layout, as inside a model:
a 3x3 stem Conv from three channels (with Relu) comes before the layer and a
GlobalAveragePool after it, so that the layer reads and writes NCHW8c; only the layer's node
is timed. Per round, every variant of a layer runs once (`tessera bench --json
--profile`), in an order that rotates between rounds; the figure is the Conv node's time per
run from the profile (the input copy left out), the lowest over the rounds, since on a shared
machine noise only ever adds. `auto` is the plugin's own choice. Alone, a layer's weights and
activations stay in cache between runs, which they do not in a model: read these as the
kernels' speed, and the whole-model comparison (compare.py) as what users get.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# name: (C in, M out, H = W, kernel, stride, pads, variable, its values to compare)
LAYERS = {
    "resnet_3x3_56": (64, 64, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "resnet_3x3_28": (128, 128, 28, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "resnet_3x3_14": (256, 256, 14, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "resnet_3x3_7": (512, 512, 7, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "squeeze_3x3_55": (16, 64, 55, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "narrow_3x3_56": (16, 16, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "narrow_3x3_28": (16, 32, 28, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "deep_3x3_4": (512, 512, 4, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "ppocr_3x3_56": (96, 24, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "ppocr_3x3_28": (96, 24, 28, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "ppocr_3x3_14": (96, 24, 14, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "narrow_out_3x3_56": (64, 16, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "narrow_24_3x3_56": (24, 24, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "narrow_16_48_3x3_56": (16, 48, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "narrow_32_16_3x3_56": (32, 16, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "squeeze_3x3_13": (64, 256, 13, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "resnet_1x1_14": (256, 1024, 14, 1, 1, 0, "TESSERA_CPU_PWT", ["0", "1"]),
    "resnet_1x1_7": (512, 2048, 7, 1, 1, 0, "TESSERA_CPU_PWT", ["0", "1"]),
    "effnet_1x1_7": (1152, 192, 7, 1, 1, 0, "TESSERA_CPU_PWT", ["0", "1"]),
    "effnet_1x1_14": (112, 672, 14, 1, 1, 0, "TESSERA_CPU_PWT", ["0", "1"]),
    "blocked_3x3_56": (64, 64, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD_TILE", ["2", "4"]),
    "blocked_3x3_28": (128, 128, 28, 3, 1, 1, "TESSERA_CPU_WINOGRAD_TILE", ["2", "4"]),
    "blocked_3x3_14": (256, 256, 14, 3, 1, 1, "TESSERA_CPU_WINOGRAD_TILE", ["2", "4"]),
    "blocked_3x3_7": (512, 512, 7, 3, 1, 1, "TESSERA_CPU_WINOGRAD_TILE", ["2", "4"]),
    "blocked_squeeze_55": (16, 64, 55, 3, 1, 1, "TESSERA_CPU_WINOGRAD_TILE", ["2", "4"]),
    "blocked_squeeze_27": (32, 128, 27, 3, 1, 1, "TESSERA_CPU_WINOGRAD_TILE", ["2", "4"]),
    "blocked_ppocr_56": (96, 24, 56, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
    "blocked_ppocr_28": (96, 24, 28, 3, 1, 1, "TESSERA_CPU_WINOGRAD", ["0", "1"]),
}
VARIABLES = ("TESSERA_CPU_WINOGRAD", "TESSERA_CPU_PWT", "TESSERA_CPU_WINOGRAD_TILE")


def make_layer(path, c, m, hw, k, s, pad, seed, blocked):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((m, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    b = (rng.standard_normal(m) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", kernel_shape=[k, k],
                              strides=[s, s], pads=[pad] * 4)]
    cin = c
    if blocked:
        cin = 3
        w0 = (rng.standard_normal((c, 3, 3, 3)) / np.sqrt(27)).astype(np.float32)
        inits.append(numpy_helper.from_array(w0, "w0"))
        nodes = [helper.make_node("Conv", ["in", "w0"], ["s"], name="stem", kernel_shape=[3, 3],
                                  pads=[1] * 4),
                 helper.make_node("Relu", ["s"], ["x"], name="stem_relu"),
                 helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv",
                                  kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4),
                 helper.make_node("GlobalAveragePool", ["c"], ["y"], name="pool")]
    graph = helper.make_graph(
        nodes, "layer",
        [helper.make_tensor_value_info("in" if blocked else "x", TensorProto.FLOAT,
                                       [1, cin, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def conv_ms(cli, model, threads, iterations, env, scratch):
    prof = os.path.join(scratch, "profile.json")
    out = subprocess.run([cli, "bench", model, "--threads", str(threads), "--warmup", "5",
                          "--iterations", str(iterations), "--json", "--profile", prof],
                         env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{model}: {out.stderr.strip()}")
    with open(prof) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    # The profile holds one event per node with its time per run.
    return sum(e["dur"] for e in events if e.get("ph") == "X" and e["name"] == "conv") / 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--only", default="")
    ap.add_argument("--dir", default="")
    args = ap.parse_args()
    names = [n for n in LAYERS if not args.only or n in args.only.split(",")]
    if not names:
        sys.exit(f"conv_layers: no layer named in --only; known: {', '.join(LAYERS)}")
    work = args.dir or tempfile.mkdtemp(prefix="tsr-layers-")
    os.makedirs(work, exist_ok=True)
    print(f"| layer | C -> M, HxW, k, stride | variable | "
          + " | ".join(["value: ms"] * 3) + " |")
    print("|---|---|---|---:|---:|---:|")
    for i, name in enumerate(names):
        c, m, hw, k, s, pad, var, values = LAYERS[name]
        path = os.path.join(work, name + ".onnx")
        if not os.path.exists(path):
            make_layer(path, c, m, hw, k, s, pad, seed=i, blocked=name.startswith("blocked_"))
        variants = values + [""]
        best = {v: float("inf") for v in variants}
        for r in range(args.rounds):
            for v in variants[r % len(variants):] + variants[:r % len(variants)]:
                env = dict(os.environ)
                for var_name in VARIABLES:
                    env.pop(var_name, None)
                if v:
                    env[var] = v
                best[v] = min(best[v], conv_ms(args.tessera, path, args.threads,
                                               args.iterations, env, work))
        cells = [f"{v or 'auto'}: {best[v]:.3f}" for v in variants]
        print(f"| {name} | {c} -> {m}, {hw}x{hw}, {k}x{k}, {s} | {var} | " + " | ".join(cells)
              + " |")


if __name__ == "__main__":
    main()
