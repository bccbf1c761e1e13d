#!/usr/bin/env python3
"""End-to-end tests of the `tessera` command-line program and the `embed` example.

    test_cli.py TESSERA EMBED SOURCE_ROOT [FAKE_PLUGIN_DIR]

Builds small ONNX models with onnx.helper in a temporary folder, computes their outputs with
numpy independently of Tessera, runs them through `tessera run`, and compares. Then checks
`tessera partition` (table and JSON), `tessera devices`, a list of bad inputs that must each
fail with one clear line on stderr and never crash, and the `embed` program. With
FAKE_PLUGIN_DIR (the folder of the fake plugins from tests/plugins), also the CLI's view of
plugins found through TESSERA_PLUGIN_PATH, broken ones among them.

Prints one line per check and a final "N passed, N failed"; exits non-zero on any failure.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RTOL, ATOL = 1e-4, 1e-5
TIMEOUT_S = 120

TESSERA, EMBED, SRC_ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
PLUGIN_DIR = sys.argv[4] if len(sys.argv) > 4 else None
passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


def run(args, env=None):
    """Runs a program; returns (exit code, stdout, stderr). A timeout counts as a crash."""
    e = dict(os.environ)
    # Plugins found on the machine must not change what these tests see.
    e.pop("TESSERA_PLUGIN_PATH", None)
    if env:
        e.update(env)
    try:
        p = subprocess.run(args, capture_output=True, text=True, errors="replace",
                           timeout=TIMEOUT_S, env=e)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as ex:
        return -999, ex.stdout or "", f"timed out after {TIMEOUT_S}s"


def describe(rc, out, err):
    tail = (err.strip() or out.strip())[-600:]
    return f"exit {rc}; {tail}"


def crashed(rc, err):
    return rc < 0 or rc >= 128 or "Sanitizer" in err or "runtime error:" in err


def sanitize(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def save_model(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def make_model(nodes, inputs, outputs, inits=(), opset=13, name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="tessera-e2e")


def write_inputs(tmp, tag, arrays):
    """Saves each input as .npy and as TensorProto .pb; returns (npy paths, pb paths)."""
    npy, pb = {}, {}
    for name, a in arrays.items():
        base = os.path.join(tmp, f"{tag}_{sanitize(name)}")
        np.save(base + ".npy", a)
        with open(base + ".pb", "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())
        npy[name], pb[name] = base + ".npy", base + ".pb"
    return npy, pb


def compare(name, got, want, exact=False):
    if got.shape != want.shape:
        return check(name, False, f"shape {got.shape}, expected {want.shape}")
    if got.dtype != want.dtype:
        return check(name, False, f"dtype {got.dtype}, expected {want.dtype}")
    if exact or want.dtype.kind in "iub":
        ok = np.array_equal(got, want)
        return check(name, ok, "" if ok else "values differ")
    ok = np.allclose(got, want, rtol=RTOL, atol=ATOL)
    err = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
    return check(name, ok, "" if ok else f"max abs error {err:.3g}")


def run_and_compare(tmp, tag, model_path, inputs, expected, threads=None, exact=False):
    """Runs the model with the inputs as .npy files and again as .pb files, and compares every
    output file with the reference. expected: {output name: array}."""
    npy, pb = write_inputs(tmp, tag, inputs)
    for fmt, files in (("npy", npy), ("pb", pb)):
        out_dir = os.path.join(tmp, f"out_{tag}_{fmt}")
        args = [TESSERA, "run", model_path, "--output-dir", out_dir]
        for name, path in files.items():
            args += ["--input", f"{name}={path}"]
        t = threads if threads is not None else (1 if fmt == "npy" else 2)
        args += ["--threads", str(t)]
        rc, out, err = run(args)
        label = f"run {tag} (inputs .{fmt}, {t} thread{'s' if t > 1 else ''})"
        if not check(label, rc == 0 and not crashed(rc, err), describe(rc, out, err)):
            continue
        for oname, want in expected.items():
            path = os.path.join(out_dir, sanitize(oname) + ".npy")
            if not check(f"{label}: output file {os.path.basename(path)} exists",
                         os.path.isfile(path)):
                continue
            compare(f"{label}: output '{oname}' matches numpy", np.load(path), want, exact)


# ---- Models and their references --------------------------------------------------------

def tiny_cnn(tmp):
    d = os.path.join(tmp, "tiny_cnn")
    rc = subprocess.run([sys.executable, os.path.join(SRC_ROOT, "examples/models/make_example.py"), d],
                        capture_output=True, text=True)
    if not check("make_example.py writes the tiny CNN", rc.returncode == 0, rc.stderr[-400:]):
        return None
    return d


def elementwise_model(tmp, rng):
    f = TensorProto.FLOAT
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    row = numpy_helper.from_array(rng.standard_normal((1, 4)).astype(np.float32), "row")
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"], name="add_ab"),          # [2,3,4] + [3,1]
        helper.make_node("Mul", ["s", "c"], ["m"], name="mul_c"),           # * [4]
        helper.make_node("Sub", ["m", "half"], ["d"], name="sub_half"),     # - scalar
        helper.make_node("Abs", ["b"], ["ab"], name="abs_b"),
        helper.make_node("Add", ["ab", "half"], ["ab1"], name="add_half"),
        helper.make_node("Div", ["d", "ab1"], ["q"], name="div"),           # / [3,1]
        helper.make_node("Max", ["q", "row"], ["mx"], name="max_row"),      # max with [1,4]
        helper.make_node("Tanh", ["mx"], ["t"], name="tanh"),
        helper.make_node("Sigmoid", ["q"], ["sg"], name="sigmoid"),
        helper.make_node("Exp", ["sg"], ["e"], name="exp"),
        helper.make_node("Sqrt", ["e"], ["sq"], name="sqrt"),
        helper.make_node("Add", ["t", "sq"], ["y"], name="add_out"),
    ]
    model = make_model(nodes,
                       [helper.make_tensor_value_info("a", f, [2, 3, 4]),
                        helper.make_tensor_value_info("b", f, [3, 1]),
                        helper.make_tensor_value_info("c", f, [4])],
                       [helper.make_tensor_value_info("y", f, [2, 3, 4]),
                        helper.make_tensor_value_info("s", f, [2, 3, 4])],
                       [half, row])
    path = save_model(model, os.path.join(tmp, "elementwise.onnx"))
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 1)).astype(np.float32)
    c = rng.standard_normal(4).astype(np.float32)
    A, B, C = a.astype(np.float64), b.astype(np.float64), c.astype(np.float64)
    R = numpy_helper.to_array(row).astype(np.float64)
    s = A + B
    q = (s * C - 0.5) / (np.abs(B) + 0.5)
    t = np.tanh(np.maximum(q, R))
    sq = np.sqrt(np.exp(1.0 / (1.0 + np.exp(-q))))
    return path, {"a": a, "b": b, "c": c}, {"y": (t + sq).astype(np.float32),
                                            "s": s.astype(np.float32)}


def mlp_model(tmp, rng):
    f = TensorProto.FLOAT
    w1 = (rng.standard_normal((16, 32)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((32, 8)) * 0.3).astype(np.float32)
    b2 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu1"),
        helper.make_node("MatMul", ["h2", "w2"], ["o0"], name="fc2"),
        helper.make_node("Add", ["o0", "b2"], ["logits"], name="fc2_bias"),
        helper.make_node("Relu", ["logits"], ["out"], name="relu2"),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("x", f, [4, 16])],
                       [helper.make_tensor_value_info("out", f, [4, 8])],
                       [numpy_helper.from_array(a, n) for a, n in
                        [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]])
    path = save_model(model, os.path.join(tmp, "mlp.onnx"))
    x = rng.standard_normal((4, 16)).astype(np.float32)
    h = np.maximum(x.astype(np.float64) @ w1 + b1, 0)
    y = np.maximum(h @ w2 + b2, 0)
    return path, {"x": x}, {"out": y.astype(np.float32)}


SHAPE_MODEL_FOLDABLE = ("shape", "dim0", "dim0_1d", "new_shape")


def shape_model(tmp, rng):
    """Reshape/Transpose/Slice/Gather/Concat with a Shape->Gather->Unsqueeze->Concat shape
    computation that constant folding turns into a constant."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    c = lambda a, n: numpy_helper.from_array(np.array(a, np.int64), n)
    inits = [c(0, "zero"), c([-1], "minus_one"), c([0], "axes0"), c([1], "starts"),
             c([10], "ends"), c([2], "steps"), c([[4, 0], [2, 2]], "idx")]
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["d0"], name="dim0", axis=0),
        helper.make_node("Unsqueeze", ["d0", "axes0"], ["d0u"], name="dim0_1d"),
        helper.make_node("Concat", ["d0u", "minus_one"], ["newshape"], name="new_shape", axis=0),
        helper.make_node("Reshape", ["x", "newshape"], ["r"], name="reshape"),      # [2,12]
        helper.make_node("Transpose", ["r"], ["t"], name="transpose", perm=[1, 0]),  # [12,2]
        helper.make_node("Slice", ["t", "starts", "ends", "axes0", "steps"], ["sl"],
                         name="slice"),                                             # [5,2]
        helper.make_node("Gather", ["sl", "idx"], ["g"], name="gather_rows", axis=0),  # [2,2,2]
        helper.make_node("Transpose", ["g"], ["gt"], name="transpose_g", perm=[0, 2, 1]),
        helper.make_node("Concat", ["g", "gt"], ["y"], name="concat", axis=2),        # [2,2,4]
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("x", f, [2, 3, 4])],
                       [helper.make_tensor_value_info("y", f, [2, 2, 4])], inits)
    path = save_model(model, os.path.join(tmp, "shapes.onnx"))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = x.reshape(x.shape[0], -1).T
    sl = t[1:10:2]
    g = sl[np.array([[4, 0], [2, 2]])]
    y = np.concatenate([g, g.transpose(0, 2, 1)], axis=2)
    return path, {"x": x}, {"y": y}


def symbolic_batch_model(tmp, rng):
    f = TensorProto.FLOAT
    w = (rng.standard_normal((8, 4)) * 0.5).astype(np.float32)
    b = (rng.standard_normal(4) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="matmul"),
        helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
        helper.make_node("Relu", ["hb"], ["y"], name="relu"),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("x", f, ["batch", 8])],
                       [helper.make_tensor_value_info("y", f, ["batch", 4])],
                       [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    path = save_model(model, os.path.join(tmp, "symbolic_batch.onnx"))

    def case(n):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        y = np.maximum(x.astype(np.float64) @ w + b, 0).astype(np.float32)
        return {"x": x}, {"y": y}
    return path, case


def odd_names_model(tmp, rng):
    f = TensorProto.FLOAT
    names = ["model/layer:0", "a b*c?"]
    nodes = [
        helper.make_node("Relu", ["in:put/0"], [names[0]], name="relu/0"),
        helper.make_node("Neg", ["in:put/0"], [names[1]], name="neg:1"),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("in:put/0", f, [3, 5])],
                       [helper.make_tensor_value_info(n, f, [3, 5]) for n in names])
    path = save_model(model, os.path.join(tmp, "odd_names.onnx"))
    x = rng.standard_normal((3, 5)).astype(np.float32)
    return path, {"in:put/0": x}, {names[0]: np.maximum(x, 0), names[1]: -x}


def passthrough_model(tmp, rng):
    f = TensorProto.FLOAT
    nodes = [helper.make_node("Neg", ["x"], ["y"], name="neg")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", f, [2, 5])],
                       [helper.make_tensor_value_info("x", f, [2, 5]),
                        helper.make_tensor_value_info("y", f, [2, 5])])
    path = save_model(model, os.path.join(tmp, "passthrough.onnx"))
    x = rng.standard_normal((2, 5)).astype(np.float32)
    return path, {"x": x}, {"x": x, "y": -x}


def int64_model(tmp, rng):
    i64 = TensorProto.INT64
    k = numpy_helper.from_array(np.array([3], np.int64), "k")
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"], name="add"),
        helper.make_node("Mul", ["s", "a"], ["m"], name="mul"),
        helper.make_node("Sub", ["m", "k"], ["y"], name="sub"),
        helper.make_node("ReduceSum", ["y"], ["total"], name="sum", keepdims=0),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("a", i64, [3, 4]),
                               helper.make_tensor_value_info("b", i64, [4])],
                       [helper.make_tensor_value_info("y", i64, [3, 4]),
                        helper.make_tensor_value_info("total", i64, [])], [k])
    path = save_model(model, os.path.join(tmp, "int64.onnx"))
    a = rng.integers(-1000, 1000, (3, 4)).astype(np.int64)
    b = rng.integers(-(1 << 40), 1 << 40, 4).astype(np.int64)
    y = (a + b) * a - 3
    return path, {"a": a, "b": b}, {"y": y, "total": np.array(y.sum(), np.int64)}


def add_model(tmp, name, shape_a, shape_b, out_shape=None, with_b=True):
    f = TensorProto.FLOAT
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="add_bad")]
    inputs = [helper.make_tensor_value_info("a", f, shape_a)]
    if with_b:
        inputs.append(helper.make_tensor_value_info("b", f, shape_b))
    model = make_model(nodes, inputs, [helper.make_tensor_value_info("y", f, out_shape)])
    path = os.path.join(tmp, name)
    onnx.save(model, path)  # deliberately not checked: some of these are invalid
    return path


# ---- The test groups ------------------------------------------------------------------------

def test_models(tmp, rng):
    d = tiny_cnn(tmp)
    if d:
        x = np.load(os.path.join(d, "input.npy"))
        want = np.load(os.path.join(d, "expected.npy"))
        run_and_compare(tmp, "tiny_cnn", os.path.join(d, "tiny_cnn.onnx"), {"input": x},
                        {"probabilities": want})
        x4 = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
        # Batch 4 of the symbolic-batch CNN: each row must equal a batch-1 run of that row.
        npy, _ = write_inputs(tmp, "tiny_cnn_b4", {"input": x4})
        out4 = os.path.join(tmp, "out_tiny_cnn_b4")
        rc, out, err = run([TESSERA, "run", os.path.join(d, "tiny_cnn.onnx"), "--input",
                            f"input={npy['input']}", "--output-dir", out4, "--threads", "2"])
        if check("run tiny_cnn at batch 4", rc == 0, describe(rc, out, err)):
            got = np.load(os.path.join(out4, "probabilities.npy"))
            ok = got.shape == (4, 10)
            for i in range(4 if ok else 0):
                npy1, _ = write_inputs(tmp, f"tiny_cnn_row{i}", {"input": x4[i:i + 1]})
                o1 = os.path.join(tmp, f"out_tiny_cnn_row{i}")
                rc1, _, err1 = run([TESSERA, "run", os.path.join(d, "tiny_cnn.onnx"), "--input",
                                    f"input={npy1['input']}", "--output-dir", o1])
                ok = ok and rc1 == 0 and np.allclose(
                    np.load(os.path.join(o1, "probabilities.npy"))[0], got[i], rtol=RTOL, atol=ATOL)
            check("tiny_cnn batch 4 rows equal batch-1 runs", ok, f"shape {got.shape}")

    for tag, fn in (("elementwise", elementwise_model), ("mlp", mlp_model),
                    ("shapes", shape_model), ("odd_names", odd_names_model),
                    ("passthrough", passthrough_model)):
        path, inputs, expected = fn(tmp, rng)
        run_and_compare(tmp, tag, path, inputs, expected)
    path, inputs, expected = int64_model(tmp, rng)
    run_and_compare(tmp, "int64", path, inputs, expected, exact=True)

    # One file name per output, each with only [A-Za-z0-9._-].
    out_dir = os.path.join(tmp, "out_odd_names_npy")
    if os.path.isdir(out_dir):
        names = sorted(os.listdir(out_dir))
        check("odd output names are sanitized", names == ["a_b_c_.npy", "model_layer_0.npy"],
              f"files: {names}")

    path, case = symbolic_batch_model(tmp, rng)
    for n in (1, 5, 3):
        inputs, expected = case(n)
        run_and_compare(tmp, f"symbolic_batch_{n}", path, inputs, expected)


def partition_json(model_path, extra=(), env=None):
    rc, out, err = run([TESSERA, "partition", model_path, "--json", *extra], env)
    if not check(f"partition --json {os.path.basename(model_path)} exits 0", rc == 0,
                 describe(rc, out, err)):
        return None
    try:
        return json.loads(out)
    except ValueError as e:
        check(f"partition --json {os.path.basename(model_path)} prints valid JSON", False,
              f"{e}: {out[:300]}")
        return None


def check_plan_json(label, plan, model):
    node_names = [n.name for n in model.graph.node]
    nodes = plan.get("nodes")
    parts = plan.get("partitions")
    check(f"{label}: 'nodes' is an array with one entry per node",
          isinstance(nodes, list) and len(nodes) == len(node_names),
          f"{len(nodes) if isinstance(nodes, list) else nodes!r} vs {len(node_names)}")
    check(f"{label}: 'partitions' is a non-empty array", isinstance(parts, list) and parts,
          repr(parts)[:200])
    if not isinstance(nodes, list) or not isinstance(parts, list):
        return
    keys_ok = all(isinstance(n, dict) and {"name", "op", "device", "reason"} <= set(n)
                  for n in nodes)
    check(f"{label}: every node has name, op, device and reason", keys_ok, repr(nodes[:2]))
    if keys_ok:
        check(f"{label}: node names and ops match the model",
              sorted((n["name"], n["op"]) for n in nodes) ==
              sorted((n.name, n.op_type) for n in model.graph.node))
        check(f"{label}: every node is on the cpu or folded",
              all(n["device"] in ("cpu", "folded") for n in nodes),
              repr([n["device"] for n in nodes]))
    parts_ok = all(isinstance(p, dict) and isinstance(p.get("device"), str) and
                   isinstance(p.get("node_count"), int) and p["node_count"] > 0 for p in parts)
    check(f"{label}: every partition has a device and a node count", parts_ok, repr(parts[:3]))
    if keys_ok and parts_ok:
        running = sum(1 for n in nodes if n["device"] != "folded")
        check(f"{label}: partition node counts add up to the nodes that run",
              sum(p["node_count"] for p in parts) == running,
              f"{sum(p['node_count'] for p in parts)} vs {running}")
    return nodes


NO_PASSES = {"TESSERA_NO_PASSES": "1"}


def test_partition(tmp, rng):
    cnn = os.path.join(tmp, "tiny_cnn", "tiny_cnn.onnx")
    if os.path.isfile(cnn):
        # By default BatchNormalization is folded into the Conv before it at load, and the
        # Relu after each Conv is fused into it.
        plan = partition_json(cnn)
        if plan is not None:
            names = [n.get("name") for n in plan.get("nodes", [])]
            check("partition tiny_cnn: bn1 is folded and relu1 fused into conv1 at load",
                  "bn1" not in names and "relu1" not in names and "conv1" in names
                  and len(names) == 7, repr(names))
            # Each node says how the CPU runs it: conv1's kernel, on which instruction set,
            # with the Relu the graph passes fused in.
            conv1 = [n for n in plan.get("nodes", []) if n.get("name") == "conv1"]
            kernel = conv1[0].get("kernel", "") if conv1 else ""
            check("partition tiny_cnn: conv1's kernel note names its kernel, ISA and fused Relu",
                  ("(AVX2)" in kernel or "(generic C)" in kernel) and "+Relu" in kernel,
                  repr(conv1))
            check("partition --json gives every node a kernel string",
                  all(isinstance(n.get("kernel"), str) for n in plan.get("nodes", [])),
                  repr(plan.get("nodes", [])[:2]))
        # The plan node by node, as the model has it, with the graph passes off.
        plan = partition_json(cnn, env=NO_PASSES)
        if plan is not None:
            nodes = check_plan_json("partition tiny_cnn", plan, onnx.load(cnn))
            if nodes:
                check("partition tiny_cnn: all ten nodes run on the cpu",
                      all(n["device"] == "cpu" for n in nodes) and len(plan["partitions"]) == 1,
                      repr(plan["partitions"]))
        rc, out, err = run([TESSERA, "partition", cnn], NO_PASSES)
        ok = rc == 0 and "NODE" in out and "partitions" in out and all(
            n in out for n in ("conv1", "bn1", "relu1", "pool1", "fc", "softmax"))
        check("partition tiny_cnn prints a table with every node", ok, describe(rc, out, err))
        plan = partition_json(cnn, ["--shape", "input=3x3x32x32"], NO_PASSES)
        check("partition --shape with a batch of 3 plans", plan is not None and
              len(plan.get("nodes", [])) == 10)

    path, _, _ = shape_model(tmp, rng)
    plan = partition_json(path)
    if plan is not None:
        nodes = check_plan_json("partition shapes", plan, onnx.load(path))
        if nodes:
            dev = {n["name"]: n["device"] for n in nodes}
            check("partition shapes: the Shape->Gather->Unsqueeze->Concat chain is folded",
                  all(dev.get(n) == "folded" for n in SHAPE_MODEL_FOLDABLE),
                  repr({n: dev.get(n) for n in SHAPE_MODEL_FOLDABLE}))
            check("partition shapes: the data nodes run",
                  all(dev.get(n) == "cpu" for n in ("reshape", "transpose", "slice", "concat")),
                  repr(dev))


def test_devices():
    rc, out, err = run([TESSERA, "devices"])
    check("devices exits 0", rc == 0, describe(rc, out, err))
    check("devices lists the cpu", re.search(r"^cpu\s", out, re.M) is not None, out[:300])
    check("devices shows the cpu features", "avx2" in out or "kernels=" in out, out[:300])


def expect_error(label, args, needles, env=None):
    """The command must fail cleanly: exit 1..127, exactly one stderr line starting with
    'tessera: error:' that mentions one of the needles (case-insensitive), no crash."""
    rc, out, err = run(args, env)
    lines = [l for l in err.splitlines() if l.strip()]
    if crashed(rc, err):
        return check(label, False, f"crashed: {describe(rc, out, err)}")
    if rc == 0:
        return check(label, False, f"succeeded; stdout: {out[:200]}")
    if len(lines) != 1 or not lines[0].startswith("tessera: error:"):
        return check(label, False, f"stderr is not one error line: {err[:600]!r}")
    low = lines[0].lower()
    ok = any(n.lower() in low for n in needles)
    return check(label, ok, "" if ok else f"'{lines[0]}' mentions none of {needles}")


def test_bad_input(tmp, rng):
    r = lambda model, *extra: [TESSERA, "run", model, *extra]
    missing = os.path.join(tmp, "no_such_model.onnx")
    expect_error("missing model file", r(missing), ["no_such_model.onnx"])

    cnn = os.path.join(tmp, "tiny_cnn", "tiny_cnn.onnx")
    x_npy = os.path.join(tmp, "tiny_cnn", "input.npy")
    if os.path.isfile(cnn):
        data = open(cnn, "rb").read()
        for cut in sorted({1, 2, 7, 40, len(data) // 5, len(data) // 3, len(data) // 2,
                           (3 * len(data)) // 4, len(data) - 3, len(data) - 1}):
            p = os.path.join(tmp, f"truncated_{cut}.onnx")
            with open(p, "wb") as f:
                f.write(data[:cut])
            expect_error(f"truncated model ({cut} of {len(data)} bytes)",
                         r(p, "--input", f"input={x_npy}"),
                         ["model", "truncat", "malformed", "invalid", "pars", "protobuf"])
    for i, n in enumerate((1, 17, 1000, 65536)):
        p = os.path.join(tmp, f"random_{n}.onnx")
        with open(p, "wb") as f:
            f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        expect_error(f"random bytes as a model ({n} bytes)", r(p),
                     ["model", "malformed", "invalid", "pars", "protobuf"])
    p = os.path.join(tmp, "empty.onnx")
    open(p, "wb").close()
    expect_error("empty model file", r(p), ["model", "empty", "graph", "invalid"])

    f = TensorProto.FLOAT
    model = make_model([helper.make_node("Add", ["x", "w_missing"], ["y"], name="add_w")],
                       [helper.make_tensor_value_info("x", f, [2, 3])],
                       [helper.make_tensor_value_info("y", f, [2, 3])])
    p = os.path.join(tmp, "undefined_input.onnx")
    onnx.save(model, p)
    x23 = os.path.join(tmp, "x23.npy")
    np.save(x23, rng.standard_normal((2, 3)).astype(np.float32))
    expect_error("model reads an undefined value", r(p, "--input", f"x={x23}"), ["w_missing"])

    p = add_model(tmp, "no_broadcast.onnx", [2, 3], [4], [2, 3])
    b4 = os.path.join(tmp, "b4.npy")
    np.save(b4, rng.standard_normal(4).astype(np.float32))
    expect_error("Add of [2,3] and [4] does not broadcast",
                 r(p, "--input", f"a={x23}", "--input", f"b={b4}"), ["add_bad", "broadcast"])
    # The same with symbolic shapes, so that the mismatch appears only at run time.
    p = add_model(tmp, "no_broadcast_dyn.onnx", ["n", "m"], ["k"], ["n", "m"])
    expect_error("Add of [2,3] and [4] does not broadcast (symbolic shapes)",
                 r(p, "--input", f"a={x23}", "--input", f"b={b4}"), ["add_bad", "broadcast"])

    # A zero-size dimension: an elementwise Add of [0,3] and [3] gives an empty [0,3].
    p = add_model(tmp, "zero_dim.onnx", ["n", 3], [3], ["n", 3])
    z = os.path.join(tmp, "zero.npy")
    np.save(z, np.zeros((0, 3), np.float32))
    b3 = os.path.join(tmp, "b3.npy")
    np.save(b3, np.ones(3, np.float32))
    out_dir = os.path.join(tmp, "out_zero")
    rc, out, err = run(r(p, "--input", f"a={z}", "--input", f"b={b3}", "--output-dir", out_dir))
    if check("zero-size dimension: Add of [0,3] and [3] succeeds", rc == 0 and not crashed(rc, err),
             describe(rc, out, err)):
        y = os.path.join(out_dir, "y.npy")
        got = np.load(y) if os.path.isfile(y) else None
        check("zero-size dimension: the output is an empty float32 [0,3]",
              got is not None and got.shape == (0, 3) and got.dtype == np.float32,
              repr(None if got is None else (got.dtype, got.shape)))

    p = add_model(tmp, "add23.onnx", [2, 3], [2, 3], [2, 3])
    i64 = os.path.join(tmp, "i64_23.npy")
    np.save(i64, np.arange(6, dtype=np.int64).reshape(2, 3))
    expect_error("int64 file for a float input", r(p, "--input", f"a={i64}", "--input", f"b={x23}"),
                 ["dtype", "int64"])
    x6 = os.path.join(tmp, "x6.npy")
    np.save(x6, np.zeros(6, np.float32))
    expect_error("input of the wrong rank", r(p, "--input", f"a={x6}", "--input", f"b={x23}"),
                 ["rank", "shape"])
    x32 = os.path.join(tmp, "x32.npy")
    np.save(x32, np.zeros((3, 2), np.float32))
    expect_error("input of the wrong shape", r(p, "--input", f"a={x32}", "--input", f"b={x23}"),
                 ["shape"])
    expect_error("unknown input name",
                 r(p, "--input", f"a={x23}", "--input", f"b={x23}", "--input", f"nope={x23}"),
                 ["nope"])
    expect_error("missing input", r(p, "--input", f"a={x23}"), ["'b'", "missing"])
    expect_error("input file does not exist",
                 r(p, "--input", f"a={x23}", "--input", f"b={tmp}/none.npy"), ["none.npy"])
    junk = os.path.join(tmp, "junk.npy")
    with open(junk, "wb") as fh:
        fh.write(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',")
    expect_error("truncated .npy input", r(p, "--input", f"a={x23}", "--input", f"b={junk}"),
                 ["'b'", "npy", "header", "truncat"])

    # External data whose location leaves the model's folder.
    sub = os.path.join(tmp, "ext")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(tmp, "secret.bin"), "wb") as fh:
        fh.write(np.ones(6, np.float32).tobytes())
    w = TensorProto()
    w.name, w.data_type = "w", TensorProto.FLOAT
    w.dims.extend([2, 3])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "24")):
        e = w.external_data.add()
        e.key, e.value = k, v
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"], name="add_ext")],
                       [helper.make_tensor_value_info("x", f, [2, 3])],
                       [helper.make_tensor_value_info("y", f, [2, 3])], [w])
    p = os.path.join(sub, "escapes.onnx")
    with open(p, "wb") as fh:
        fh.write(model.SerializeToString())
    expect_error("external data '../secret.bin' is refused", r(p, "--input", f"x={x23}"),
                 ["escapes", "outside", ".."])

    p = add_model(tmp, "add23b.onnx", [2, 3], [2, 3], [2, 3])
    args = ["--input", f"a={x23}", "--input", f"b={x23}"]
    expect_error("unknown --device", r(p, *args, "--device", "nosuchdev"), ["nosuchdev"])
    expect_error("unknown option", r(p, *args, "--bogus"), ["--bogus"])
    expect_error("unknown option for partition", [TESSERA, "partition", p, "--frobnicate"],
                 ["--frobnicate"])
    expect_error("bad --threads", r(p, *args, "--threads", "many"), ["--threads", "many"])
    expect_error("--input without '='", r(p, "--input", "a"), ["--input", "name=value"])
    expect_error("unknown command", [TESSERA, "explode"], ["explode"])
    expect_error("run without a model", [TESSERA, "run"], ["model"])


def test_plugins_cli(tmp, rng):
    """The fake plugins (good and broken, all in one folder) through TESSERA_PLUGIN_PATH."""
    if not PLUGIN_DIR:
        print("SKIP plugin checks: no fake plugin folder given")
        return
    env = {"TESSERA_PLUGIN_PATH": PLUGIN_DIR}
    rc, out, err = run([TESSERA, "devices"], env)
    check("devices with the fake plugins exits 0", rc == 0 and not crashed(rc, err),
          describe(rc, out, err))
    for dev in ("cpu", "fake", "fake_staging", "fake_newer"):
        check(f"devices lists '{dev}'", re.search(rf"^{dev}\s", out, re.M) is not None, out[:600])
    check("devices marks the fake device as simulated", "SIMULATED" in out)
    for broken in ("fake_query_null", "fake_init_fails", "fake_no_execute", "fake_no_query",
                   "fake_small_table", "fake_too_new"):
        check(f"devices reports the skipped plugin {broken}",
              re.search(rf"^skipped plugin \S*libtessera_{broken}\.so: \S", out, re.M)
              is not None, out[-800:])
    check("broken plugins leave stderr quiet", err.strip() == "", err[:300])

    f = TensorProto.FLOAT
    nodes = [helper.make_node("Relu", ["x"], ["r1"], name="relu_a"),
             helper.make_node("Sigmoid", ["r1"], ["s"], name="sigmoid_mid"),
             helper.make_node("Relu", ["s"], ["y"], name="relu_b")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", f, [2, 3, 4])],
                       [helper.make_tensor_value_info("y", f, [2, 3, 4])])
    path = save_model(model, os.path.join(tmp, "relu_sigmoid.onnx"))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    want = (1.0 / (1.0 + np.exp(-np.maximum(x.astype(np.float64), 0)))).astype(np.float32)
    npy, _ = write_inputs(tmp, "relu_sigmoid", {"x": x})

    rc, out, err = run([TESSERA, "partition", path, "--device", "fake,cpu", "--json"], env)
    if check("partition --device fake,cpu --json exits 0", rc == 0, describe(rc, out, err)):
        try:
            plan = json.loads(out)
            dev = {n["name"]: n for n in plan["nodes"]}
            check("the Relu nodes go to the fake device, the Sigmoid to the cpu",
                  [dev[n]["device"] for n in ("relu_a", "sigmoid_mid", "relu_b")] ==
                  ["fake", "cpu", "fake"], repr(plan["nodes"]))
            reason = dev["sigmoid_mid"]["reason"] or ""
            check("the Sigmoid's reason names the refusing device and its words",
                  "fake" in reason and "op" in reason and "only Relu" in reason, reason)
            check("three partitions: fake, cpu, fake",
                  [(p["device"], p["node_count"]) for p in plan["partitions"]] ==
                  [("fake", 1), ("cpu", 1), ("fake", 1)], repr(plan["partitions"]))
        except (ValueError, KeyError, TypeError) as e:
            check("partition --json with plugins is well-formed", False, f"{e}: {out[:300]}")

    for devices in ("fake,cpu", "fake_staging,cpu", "fake_newer"):
        out_dir = os.path.join(tmp, f"out_plugin_{devices.replace(',', '_')}")
        rc, out, err = run([TESSERA, "run", path, "--input", f"x={npy['x']}", "--device", devices,
                            "--output-dir", out_dir], env)
        if check(f"run on --device {devices}", rc == 0 and not crashed(rc, err),
                 describe(rc, out, err)):
            compare(f"run on --device {devices} matches numpy",
                    np.load(os.path.join(out_dir, "y.npy")), want)
    expect_error("strict mode with only the fake device names the Sigmoid node",
                 [TESSERA, "run", path, "--input", f"x={npy['x']}", "--device", "fake", "--strict"],
                 ["sigmoid_mid"], env)


def test_embed(tmp):
    d = os.path.join(tmp, "tiny_cnn")
    if not os.path.isdir(d):
        check("embed (no tiny CNN to run)", False)
        return
    model = os.path.join(d, "tiny_cnn.onnx")
    rc, out, err = run([EMBED, model, os.path.join(d, "input.npy"), os.path.join(d, "expected.npy")])
    check("embed tiny_cnn.onnx input.npy expected.npy", rc == 0 and not crashed(rc, err),
          describe(rc, out, err))
    rc, out, err = run([EMBED, model])
    check("embed tiny_cnn.onnx (two threads, one session)", rc == 0 and not crashed(rc, err),
          describe(rc, out, err))
    rc, out, err = run([EMBED, model, os.path.join(d, "input.npy"), os.path.join(d, "input.npy")])
    check("embed with the wrong expected output fails cleanly", rc != 0 and not crashed(rc, err),
          describe(rc, out, err))


def test_bench(tmp):
    d = os.path.join(tmp, "tiny_cnn")
    model = os.path.join(d, "tiny_cnn.onnx")
    if not os.path.exists(model):
        check("bench (no tiny CNN to run)", False)
        return
    rc, out, err = run([TESSERA, "bench", model, "--iterations", "5", "--warmup", "1",
                        "--shape", "input=2x3x32x32", "--json"])
    if check("bench --json exits 0", rc == 0 and not crashed(rc, err), describe(rc, out, err)):
        try:
            r = json.loads(out)
        except ValueError:
            r = {}
        keys = ("median_ms", "min_ms", "p90_ms", "p99_ms", "load_ms", "peak_rss_mb", "first_run_ms")
        check("bench --json has the latency, load and memory keys",
              all(isinstance(r.get(k), (int, float)) for k in keys), out[:300])
        check("bench --json orders min <= median <= p90 <= p99",
              r and r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["p99_ms"], out[:300])
        check("bench --json counts the iterations", r.get("iterations") == 5, out[:300])
        runs = r.get("runs_ms") if r else None
        check("bench --json lists every measured run, its min and median as reported",
              isinstance(runs, list) and len(runs) == 5 and all(v > 0 for v in runs)
              and abs(min(runs) - r["min_ms"]) < 1e-3
              and abs(sorted(runs)[2] - r["median_ms"]) < 1e-3, out[:400])
    trace = os.path.join(tmp, "trace.json")
    rc, out, err = run([TESSERA, "bench", model, "--iterations", "3", "--device", "all", "--json",
                        "--profile", trace], NO_PASSES)
    if check("bench --device all --json --profile exits 0", rc == 0 and not crashed(rc, err),
             describe(rc, out, err)):
        try:
            rows = json.loads(out)
        except ValueError:
            rows = None
        check("bench --device all prints a list with one row per device",
              isinstance(rows, list) and rows and rows[0].get("device") == "cpu", out[:300])
        try:
            with open(trace) as f:
                events = json.load(f)["traceEvents"]
        except (OSError, ValueError, KeyError):
            events = []
        check("bench --profile writes a Chrome trace with one event per node",
              len(events) == 10 and all(e.get("ph") == "X" and e.get("dur", -1) >= 0
                                       for e in events), repr(events[:2]))
        convs = [e for e in events if e.get("cat") == "Conv"]
        check("bench --profile's trace gives each Conv its kernel",
              convs and all(any(isa in e.get("args", {}).get("kernel", "")
                                for isa in ("(AVX2)", "(generic C)")) for e in convs),
              repr(convs[:2]))
    rc, out, err = run([TESSERA, "bench", model, "--iterations", "2"])
    check("bench prints a table", rc == 0 and "MEDIAN_MS" in out, describe(rc, out, err))
    expect_error("bench with an unknown --shape input", [TESSERA, "bench", model, "--shape",
                 "nope=1x3"], ["nope"])


def main():
    rng = np.random.default_rng(20261126)
    with tempfile.TemporaryDirectory(prefix="tessera-e2e-") as tmp:
        for group in (lambda: test_models(tmp, rng), lambda: test_partition(tmp, rng),
                      test_devices, lambda: test_bad_input(tmp, rng),
                      lambda: test_plugins_cli(tmp, rng), lambda: test_embed(tmp),
                      lambda: test_bench(tmp)):
            try:
                group()
            except Exception as e:  # a broken group must not hide the others
                import traceback
                traceback.print_exc()
                check(f"test group raised {type(e).__name__}", False, str(e))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
