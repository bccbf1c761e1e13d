#!/usr/bin/python3
"""Writes the small ONNX models, TensorProto files and .npy files that tests/test_onnx.c and
tests/test_npy.c read.

    /usr/bin/python3 tests/gen_test_models.py OUT_DIR          write everything into OUT_DIR
    /usr/bin/python3 tests/gen_test_models.py --verify-npy DIR check the .npy files Tessera wrote

The models are built with onnx.helper and never run through onnx.checker: several are broken on
purpose (cycles, escaping external-data paths, unsorted nodes). The values below are mirrored in
the C tests; change both together.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 13)]

# dtype name -> (ONNX type, numpy dtype or None for bfloat16, six values for a [2, 3] tensor)
DTYPES = {
    "float32": (TensorProto.FLOAT, np.float32, [-2.5, -1.0, 0.0, 1.0, 2.25, 3e38]),
    "float64": (TensorProto.DOUBLE, np.float64, [-2.5, -1.0, 0.0, 1.0, 2.25, 1e300]),
    "float16": (TensorProto.FLOAT16, np.float16, [-2.5, -1.0, 0.0, 1.0, 2.25, 65504.0]),
    "bfloat16": (TensorProto.BFLOAT16, None, [-2.5, -1.0, 0.0, 1.0, 2.25, 3.0]),
    "int8": (TensorProto.INT8, np.int8, [-128, -1, 0, 1, 2, 127]),
    "uint8": (TensorProto.UINT8, np.uint8, [0, 1, 2, 128, 254, 255]),
    "int16": (TensorProto.INT16, np.int16, [-32768, -1, 0, 1, 2, 32767]),
    "uint16": (TensorProto.UINT16, np.uint16, [0, 1, 2, 32768, 65534, 65535]),
    "int32": (TensorProto.INT32, np.int32, [-2**31, -1, 0, 1, 2, 2**31 - 1]),
    "uint32": (TensorProto.UINT32, np.uint32, [0, 1, 2, 2**31, 2**32 - 2, 2**32 - 1]),
    "int64": (TensorProto.INT64, np.int64, [-2**63, -1, 0, 1, 2, 2**63 - 1]),
    "uint64": (TensorProto.UINT64, np.uint64, [0, 1, 2, 2**63, 2**64 - 2, 2**64 - 1]),
    "bool": (TensorProto.BOOL, np.bool_, [True, False, True, True, False, False]),
}


def bf16_bytes(vals):
    bits = np.array(vals, dtype=np.float32).view(np.uint32) >> 16
    return bits.astype("<u2").tobytes()


def save(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def model(graph, **kw):
    kw.setdefault("opset_imports", OPSET)
    m = helper.make_model(graph, **kw)
    m.ir_version = 8
    return m


def fvi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def simple(out):
    # X[N,3] + W -> Relu -> Y. W is both an initializer and a graph input (IR 3 style), so it
    # must not count as an input. The Relu has no name. "hidden" has value_info.
    w = numpy_helper.from_array(np.array([1, 2, 3], dtype=np.float32), "W")
    nodes = [helper.make_node("Add", ["X", "W"], ["hidden"], name="add_0"),
             helper.make_node("Relu", ["hidden"], ["Y"])]
    g = helper.make_graph(nodes, "simple", [fvi("X", ["N", 3]), fvi("W", [3])],
                          [fvi("Y", ["N", 3])], [w], value_info=[fvi("hidden", ["N", 3])])
    save(model(g), f"{out}/simple.onnx")


def constants(out):
    c1 = numpy_helper.from_array(np.array([[1, 2], [3, 4]], dtype=np.float32), "c1v")
    nodes = [
        helper.make_node("Constant", [], ["c1"], value=c1),
        helper.make_node("Constant", [], ["c2"], value_float=1.5),
        helper.make_node("Constant", [], ["c3"], value_floats=[1.0, 2.0, 3.0]),
        helper.make_node("Constant", [], ["c4"], value_int=7),
        helper.make_node("Constant", [], ["c5"], value_ints=[4, 5]),
        helper.make_node("Add", ["X", "c1"], ["Y"], name="add"),
    ]
    outs = [fvi("Y", [2, 2]), fvi("c2", []), fvi("c3", [3]),
            fvi("c4", [], TensorProto.INT64), fvi("c5", [2], TensorProto.INT64)]
    g = helper.make_graph(nodes, "constants", [fvi("X", [2, 2])], outs)
    save(model(g), f"{out}/constant.onnx")

    n = helper.make_node("Constant", [], ["s"], value_string="hello")
    g = helper.make_graph([n], "cs", [], [helper.make_tensor_value_info("s", TensorProto.STRING,
                                                                       [])])
    save(model(g), f"{out}/constant_string.onnx")


def attrs(out):
    # A node of a domain the model does not import, carrying one attribute of every type.
    sub = helper.make_graph([helper.make_node("Identity", ["si"], ["so"])], "body",
                            [fvi("si", [1])], [fvi("so", [1])])
    t = numpy_helper.from_array(np.array([7, 8, 9], dtype=np.int64), "tattr")
    n = helper.make_node("AllAttrs", ["X"], ["Y"], name="all_attrs", domain="com.tessera.test",
                         f=0.25, i=-42, s=b"hello", t=t, g=sub, floats=[1.5, -2.0],
                         ints=[1, 2, 3], strings=[b"a", b"bc"])
    g = helper.make_graph([n], "attrs", [fvi("X", [1])], [fvi("Y", [1])])
    save(model(g), f"{out}/attrs.onnx")

    tensors = helper.make_attribute("ts", [t, t])
    n = helper.make_node("Foo", ["X"], ["Y"], name="foo")
    n.attribute.append(tensors)
    g = helper.make_graph([n], "tensors", [fvi("X", [1])], [fvi("Y", [1])])
    save(model(g), f"{out}/attr_tensors.onnx")


def if_outer(out):
    # The If comes first in the file but its branches read "xx", which the Relu after it
    # produces: the importer must sort Relu first.
    then_g = helper.make_graph([helper.make_node("Identity", ["xx"], ["t_out"])], "then", [],
                               [fvi("t_out", [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["xx"], ["e_out"])], "else", [],
                               [fvi("e_out", [2])])
    nodes = [helper.make_node("If", ["cond"], ["Y"], name="the_if", then_branch=then_g,
                              else_branch=else_g),
             helper.make_node("Relu", ["X"], ["xx"], name="relu")]
    g = helper.make_graph(nodes, "if_outer", [fvi("X", [2]), fvi("cond", [], TensorProto.BOOL)],
                          [fvi("Y", [2])])
    save(model(g), f"{out}/if_outer.onnx")

    # The same, but "xx" is read two subgraphs down.
    inner = helper.make_graph([helper.make_node("Identity", ["xx"], ["i_out"])], "inner", [],
                              [fvi("i_out", [2])])
    inner2 = helper.make_graph([helper.make_node("Identity", ["X"], ["i2_out"])], "inner2", [],
                               [fvi("i2_out", [2])])
    mid = helper.make_graph([helper.make_node("If", ["cond"], ["m_out"], name="inner_if",
                                              then_branch=inner, else_branch=inner2)],
                            "mid", [], [fvi("m_out", [2])])
    other = helper.make_graph([helper.make_node("Identity", ["X"], ["o_out"])], "other", [],
                              [fvi("o_out", [2])])
    nodes = [helper.make_node("If", ["cond"], ["Y"], name="outer_if", then_branch=mid,
                              else_branch=other),
             helper.make_node("Relu", ["X"], ["xx"], name="relu")]
    g = helper.make_graph(nodes, "nested", [fvi("X", [2]), fvi("cond", [], TensorProto.BOOL)],
                          [fvi("Y", [2])])
    save(model(g), f"{out}/nested_if.onnx")

    # A branch reading a name defined nowhere.
    bad = helper.make_graph([helper.make_node("Identity", ["nowhere"], ["b_out"])], "bad", [],
                            [fvi("b_out", [2])])
    nodes = [helper.make_node("If", ["cond"], ["Y"], name="bad_if", then_branch=bad,
                              else_branch=other)]
    g = helper.make_graph(nodes, "if_missing", [fvi("X", [2]), fvi("cond", [], TensorProto.BOOL)],
                          [fvi("Y", [2])])
    save(model(g), f"{out}/if_missing.onnx")


def external_tensor(name, arr, location, offset=None, length=None):
    t = numpy_helper.from_array(arr, name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location)]
    if offset is not None:
        entries.append(("offset", str(offset)))
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        e = t.external_data.add()
        e.key = k
        e.value = v
    return t


def ext_model(path, tensor):
    n = helper.make_node("Add", ["X", tensor.name], ["Y"], name="add")
    g = helper.make_graph([n], "ext", [fvi("X", [4])], [fvi("Y", [4])], [tensor])
    save(model(g), path)


def external(out):
    arr = np.array([0.5, 1.5, 2.5, 3.5], dtype=np.float32)
    os.makedirs(f"{out}/ext", exist_ok=True)
    with open(f"{out}/ext/weights.bin", "wb") as f:
        f.write(b"\xAA" * 16 + arr.tobytes() + b"\xBB" * 8)
    ext_model(f"{out}/ext/model.onnx", external_tensor("W", arr, "weights.bin", 16, 16))
    ext_model(f"{out}/ext/short.onnx", external_tensor("W", arr, "weights.bin", 32, 16))
    ext_model(f"{out}/ext/missing.onnx", external_tensor("W", arr, "nothere.bin", 0, 16))

    with open(f"{out}/outside.bin", "wb") as f:
        f.write(arr.tobytes())
    ext_model(f"{out}/ext_dotdot/model.onnx", external_tensor("W", arr, "../outside.bin"))
    ext_model(f"{out}/ext_abs/model.onnx", external_tensor("W", arr, "/etc/passwd"))
    ext_model(f"{out}/ext_symlink/model.onnx", external_tensor("W", arr, "link.bin"))
    link = f"{out}/ext_symlink/link.bin"
    if os.path.lexists(link):
        os.remove(link)
    os.symlink("../outside.bin", link)


def dtypes(out):
    raw, typed = [], []
    for name, (onnx_type, np_type, vals) in DTYPES.items():
        tname = f"t_{name}"
        if np_type is None:
            raw.append(helper.make_tensor(tname, onnx_type, [2, 3], bf16_bytes(vals), raw=True))
        else:
            raw.append(numpy_helper.from_array(np.array(vals, dtype=np_type).reshape(2, 3),
                                               tname))
        typed.append(helper.make_tensor(tname, onnx_type, [2, 3], vals))
    for fname, inits in (("dtypes_raw", raw), ("dtypes_typed", typed)):
        outs = [helper.make_tensor_value_info(t.name, t.data_type, [2, 3]) for t in inits]
        g = helper.make_graph([], fname, [], outs, inits)
        save(model(g), f"{out}/{fname}.onnx")


def broken(out):
    s = helper.make_tensor("names", TensorProto.STRING, [2], [b"a", b"b"])
    g = helper.make_graph([], "strs", [], [helper.make_tensor_value_info("names",
                                                                         TensorProto.STRING,
                                                                         [2])], [s])
    save(model(g), f"{out}/string_init.onnx")

    values = helper.make_tensor("sp", TensorProto.FLOAT, [1], [1.0])
    idx = helper.make_tensor("sp_idx", TensorProto.INT64, [1], [0])
    sp = helper.make_sparse_tensor(values, idx, [4])
    g = helper.make_graph([], "sparse", [], [fvi("sp", [4])], sparse_initializer=[sp])
    save(model(g), f"{out}/sparse_init.onnx")

    t = TensorProto()
    t.name = "W"
    t.data_type = TensorProto.FLOAT
    t.dims.extend([3])
    t.raw_data = b"\0" * 10
    g = helper.make_graph([], "badlen", [], [fvi("W", [3])], [t])
    save(model(g), f"{out}/bad_raw_len.onnx")

    t = TensorProto()
    t.name = "W"
    t.data_type = TensorProto.INT64
    t.dims.extend([3])
    t.int64_data.extend([1, 2])
    g = helper.make_graph([], "badtyped", [], [fvi("W", [3], TensorProto.INT64)], [t])
    save(model(g), f"{out}/bad_typed_len.onnx")

    # Dims that ask for 4 TiB with no data behind them: must fail before allocating.
    for field in ("typed", "raw"):
        t = TensorProto()
        t.name = "W"
        t.data_type = TensorProto.FLOAT
        t.dims.extend([2**40])
        if field == "raw":
            t.raw_data = b"\0" * 8
        g = helper.make_graph([], "huge", [], [fvi("W", [2**40])], [t])
        save(model(g), f"{out}/huge_dims_{field}.onnx")

    n = helper.make_node("Conv", ["X", "w"], ["Y"], name="conv_3")
    g = helper.make_graph([n], "missing", [fvi("X", [1, 1, 3, 3])], [fvi("Y", None)])
    save(model(g), f"{out}/missing_input.onnx")

    nodes = [helper.make_node("Relu", ["b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second")]
    g = helper.make_graph(nodes, "cycle", [], [fvi("a", [1])])
    save(model(g), f"{out}/cycle.onnx")

    nodes = [helper.make_node("Relu", ["X"], ["Y"], name="one"),
             helper.make_node("Neg", ["X"], ["Y"], name="two")]
    g = helper.make_graph(nodes, "dup", [fvi("X", [1])], [fvi("Y", [1])])
    save(model(g), f"{out}/dup_producer.onnx")

    nodes = [helper.make_node("Relu", ["X"], ["Y"], name="one")]
    g = helper.make_graph(nodes, "noout", [fvi("X", [1])], [fvi("Z", [1])])
    save(model(g), f"{out}/output_missing.onnx")

    m = onnx.ModelProto()
    m.ir_version = 8
    m.opset_import.extend(OPSET)
    with open(f"{out}/no_graph.onnx", "wb") as f:
        f.write(m.SerializeToString())


def tensors(out):
    t = numpy_helper.from_array(np.array([[1, 2], [3, 4]], dtype=np.float32), "input_0")
    with open(f"{out}/tensor_raw.pb", "wb") as f:
        f.write(t.SerializeToString())
    t = helper.make_tensor("ids", TensorProto.INT64, [3], [5, -6, 7])
    with open(f"{out}/tensor_typed.pb", "wb") as f:
        f.write(t.SerializeToString())


def npy_files(out):
    d = f"{out}/npy"
    os.makedirs(d, exist_ok=True)
    for name, (_, np_type, vals) in DTYPES.items():
        if np_type is None:
            continue
        np.save(f"{d}/{name}.npy", np.array(vals, dtype=np_type).reshape(2, 3))
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    for ver in ((2, 0), (3, 0)):
        with open(f"{d}/v{ver[0]}.npy", "wb") as f:
            np.lib.format.write_array(f, arr, version=ver)
    np.save(f"{d}/scalar.npy", np.array(3.5, dtype=np.float64))
    np.save(f"{d}/empty.npy", np.zeros((0, 3), dtype=np.int32))
    np.save(f"{d}/fortran.npy", np.asfortranarray(arr))
    np.save(f"{d}/bigendian.npy", arr.astype(">f4"))
    np.save(f"{d}/object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    np.save(f"{d}/complex.npy", np.zeros(2, dtype=np.complex64))


def verify_npy(d):
    """Loads the files test_npy.c wrote (one per dtype, named <dtype>.npy) and checks them."""
    failures = 0
    for name, (_, np_type, vals) in DTYPES.items():
        if np_type is None:
            continue
        path = f"{d}/{name}.npy"
        a = np.load(path)
        want = np.array(vals, dtype=np_type).reshape(2, 3)
        with open(path, "rb") as f:
            head = f.read(10)
        hlen = head[8] | head[9] << 8
        if a.dtype != want.dtype or a.shape != want.shape or not np.array_equal(a, want):
            print(f"{path}: got {a.dtype} {a.shape} {a!r}", file=sys.stderr)
            failures += 1
        elif (10 + hlen) % 64 != 0:
            print(f"{path}: data starts at {10 + hlen}, not 64-aligned", file=sys.stderr)
            failures += 1
    s = np.load(f"{d}/scalar.npy")
    if s.shape != () or s.dtype != np.float64 or s != 3.5:
        print(f"scalar.npy: got {s!r}", file=sys.stderr)
        failures += 1
    e = np.load(f"{d}/empty.npy")
    if e.shape != (0, 3) or e.dtype != np.int32:
        print(f"empty.npy: got {e.shape} {e.dtype}", file=sys.stderr)
        failures += 1
    return 1 if failures else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--verify-npy":
        return verify_npy(sys.argv[2])
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for step in (simple, constants, attrs, if_outer, external, dtypes, broken, tensors,
                 npy_files):
        step(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
