#!/usr/bin/env python3
"""Compares the OpenCL device with the CPU device on random single-node models.

    opencl_vs_cpu.py TESSERA_CLI WORK_DIR [SEED] [SCALE]

For the ops the plugin gained with the recurrent layers (LSTM, GRU, RNN, MeanVarianceNormalization,
ReverseSequence, MaxUnpool, Einsum, 3-D and N-D pooling, LpPool, 3-D Conv and ConvTranspose,
Pad, Expand, DynamicQuantizeLinear, Det, RoiAlign, the integer products and convolutions, DFT,
STFT, training BatchNormalization, TopK, OneHot), it builds models whose options are drawn at
random (seeded, so a run is reproducible), runs each with `--device opencl --strict` and with
`--device cpu`, and compares the outputs (bit-exact for integers and quantised ops). The ONNX
node suite has few tests of these; this covers their option combinations (directions,
layouts, sequence lengths of 0, activations, pads, dilations, ties and NaN, per-channel
parameters). Exits 77 (skipped) when no OpenCL device is present; prints one line per failure
and a closing "N cases, N failures". SCALE multiplies the number of cases (default 1).
"""
import os
import random
import shutil
import subprocess
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # the build machine's python3 lacks numpy or onnx
    print("skipped: %s" % e)
    sys.exit(77)

NP2ONNX = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE,
           np.float16: TensorProto.FLOAT16, np.int32: TensorProto.INT32,
           np.int64: TensorProto.INT64, np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8,
           np.bool_: TensorProto.BOOL}


class Checker:
    def __init__(self, cli, work):
        self.cli, self.work, self.cases, self.failures = cli, work, 0, 0

    def run(self, model, files, dev, outdir):
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        args = [self.cli, "run", model, "--device", dev, "--strict", "--output-dir", outdir]
        for k, v in files.items():
            args += ["--input", "%s=%s" % (k, v)]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr.strip()
        return {f[:-4]: np.load(os.path.join(outdir, f)) for f in os.listdir(outdir)}, ""

    def check(self, desc, node, inputs, outputs, opset, inits=(), rtol=1e-4, atol=1e-5):
        """inputs: (name, array) fed at run time; inits: (name, array) constants; outputs:
        (name, numpy dtype, shape)."""
        d = os.path.join(self.work, "case%d" % self.cases)
        self.cases += 1
        os.makedirs(d, exist_ok=True)
        gi, files = [], {}
        for n, a in inputs:
            gi.append(helper.make_tensor_value_info(n, NP2ONNX[a.dtype.type], list(a.shape)))
            files[n] = os.path.join(d, n + ".npy")
            np.save(files[n], a)
        go = [helper.make_tensor_value_info(n, NP2ONNX[t], list(s)) for n, t, s in outputs]
        g = helper.make_graph([node], "g", gi, go,
                              [numpy_helper.from_array(a, n) for n, a in inits])
        path = os.path.join(d, "model.onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
        ref, err = self.run(path, files, "cpu", os.path.join(d, "cpu"))
        if ref is None:  # the generator asked for something the reference refuses
            self.cases -= 1
            return
        got, err = self.run(path, files, "opencl", os.path.join(d, "opencl"))
        if got is None:
            self.fail(desc, "OpenCL failed: " + err[:300])
            return
        for k, want in ref.items():
            have = got.get(k)
            if have is None or have.shape != want.shape or have.dtype != want.dtype:
                self.fail(desc, "output %s missing or of another shape or dtype" % k)
            elif not np.allclose(have.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                 atol=atol, equal_nan=True):
                diff = np.nanmax(np.abs(have.astype(np.float64) - want.astype(np.float64)))
                self.fail(desc, "output %s differs by up to %g" % (k, diff))

    def fail(self, desc, why):
        self.failures += 1
        print("FAIL %s: %s" % (desc, why), flush=True)


def q8(rng, dt, shape):
    lo, hi = (-128, 128) if dt == np.int8 else (0, 256)
    return rng.integers(lo, hi, shape).astype(dt)


ACTS = ["Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
        "HardSigmoid", "Elu", "Softsign", "Softplus"]


def recurrent(c, R, rng, n):
    for _ in range(n):
        kind = R.choice(["LSTM", "GRU", "RNN"])
        G, nact = {"LSTM": (4, 3), "GRU": (3, 2), "RNN": (1, 1)}[kind]
        direction = R.choice(["forward", "reverse", "bidirectional"])
        dirs = 2 if direction == "bidirectional" else 1
        layout = R.random() < 0.5
        seq, batch, inp, hid = R.randint(1, 5), R.randint(1, 4), R.randint(1, 6), R.randint(1, 7)
        xs = [batch, seq, inp] if layout else [seq, batch, inp]
        sd = [batch, dirs, hid] if layout else [dirs, batch, hid]
        ys = [batch, seq, dirs, hid] if layout else [seq, dirs, batch, hid]
        data = {"X": rng.standard_normal(xs).astype(np.float32),
                "W": (0.5 * rng.standard_normal([dirs, G * hid, inp])).astype(np.float32),
                "R": (0.5 * rng.standard_normal([dirs, G * hid, hid])).astype(np.float32),
                "B": (0.3 * rng.standard_normal([dirs, 2 * G * hid])).astype(np.float32),
                "L": rng.integers(0, seq + 1, [batch]).astype(R.choice([np.int32, np.int64])),
                "H0": rng.standard_normal(sd).astype(np.float32),
                "C0": rng.standard_normal(sd).astype(np.float32),
                "P": rng.standard_normal([dirs, 3 * hid]).astype(np.float32)}
        names = ["X", "W", "R"] + [k if R.random() < 0.5 else "" for k in ["B", "L", "H0"]]
        if kind == "LSTM":
            names += [k if R.random() < 0.5 else "" for k in ["C0", "P"]]
        while names[-1] == "":
            names.pop()
        outs = [o if R.random() < 0.7 else "" for o in (["Y", "YH", "YC"] if kind == "LSTM"
                                                         else ["Y", "YH"])]
        if not any(outs):
            outs[0] = "Y"
        while outs[-1] == "":
            outs.pop()
        attrs = dict(hidden_size=hid, direction=direction)
        if layout:
            attrs["layout"] = 1
        if R.random() < 0.4:
            attrs["clip"] = R.choice([0.7, 2.5])
        if kind == "LSTM" and R.random() < 0.3:
            attrs["input_forget"] = 1
        if kind == "GRU":
            attrs["linear_before_reset"] = R.choice([0, 1])
        if R.random() < 0.5:
            acts = [R.choice(ACTS) for _ in range(nact * (dirs if R.random() < 0.5 else 1))]
            attrs["activations"] = acts
            attrs["activation_alpha"] = [round(R.uniform(0.1, 0.9), 3) for _ in acts]
            attrs["activation_beta"] = [round(R.uniform(0.1, 0.9), 3) for _ in acts]
        node = helper.make_node(kind, names, outs, **attrs)
        ins, inits = [], []
        for nm in names:
            if nm:
                (inits if nm in "WRBP" and R.random() < 0.7 else ins).append((nm, data[nm]))
        shapes = {"Y": ys, "YH": sd, "YC": sd}
        c.check("%s %s" % (kind, attrs), node, ins,
                [(o, np.float32, shapes[o]) for o in outs if o], 14, inits)


def pooling(c, R, rng, n):
    def osz(i, k, s, pb, pe, d, ceil):
        v = i + pb + pe - ((k - 1) * d + 1)
        return (-(-v // s) if ceil else v // s) + 1
    for _ in range(n):
        op = R.choice(["MaxPool", "AveragePool", "LpPool"])
        dts = [np.float32, np.float16, np.float64] + ([np.uint8, np.int8] if op == "MaxPool"
                                                       else [])
        dt = R.choice(dts)
        sp = 3 if dt == np.float32 and op != "LpPool" else R.choice([1, 2, 3])
        ins = [R.randint(3, 7) for _ in range(sp)]
        ks = [R.randint(1, 3) for _ in range(sp)]
        st = [R.randint(1, 2) for _ in range(sp)]
        ds = [R.randint(1, 2) for _ in range(sp)] if op == "MaxPool" else [1] * sp
        pads = [R.randint(0, k - 1) for k in ks] * 2
        ceil = op != "LpPool" and R.random() < 0.3
        kw = dict(kernel_shape=ks, strides=st, pads=pads)
        if op == "MaxPool":
            kw["dilations"] = ds
        if ceil:
            kw["ceil_mode"] = 1
        if op == "AveragePool":
            kw["count_include_pad"] = R.choice([0, 1])
        if op == "LpPool":
            kw["p"] = R.choice([1, 2, 3])
        outs = [osz(ins[j], ks[j], st[j], pads[j], pads[j + sp], ds[j], ceil) for j in range(sp)]
        shape = [2, 3] + ins
        x = (q8(rng, dt, shape) if dt in (np.uint8, np.int8)
             else rng.standard_normal(shape).astype(dt))
        o = [("Y", dt, [2, 3] + outs)]
        if op == "MaxPool" and R.random() < 0.5:
            o.append(("I", np.int64, [2, 3] + outs))
            kw["storage_order"] = R.choice([0, 1])
        tol = 2e-3 if dt == np.float16 else 1e-4
        node = helper.make_node(op, ["X"], [n for n, _, _ in o], **kw)
        c.check("%s %s %s" % (op, dt.__name__, kw), node, [("X", x)], o,
                12 if op != "LpPool" else 11, rtol=tol)
    for _ in range(max(1, n // 4)):
        dt = R.choice([np.float32, np.float64])
        x = rng.standard_normal([2, 3, 4, 5]).astype(dt)
        node = helper.make_node("GlobalLpPool", ["X"], ["Y"], p=R.choice([1, 2, 3]))
        c.check("GlobalLpPool", node, [("X", x)], [("Y", dt, [2, 3, 1, 1])], 11)


def convolutions(c, R, rng, n):
    def osz(i, k, s, pb, pe, d):
        return (i + pb + pe - ((k - 1) * d + 1)) // s + 1
    for _ in range(n):
        sp = R.choice([1, 2, 3])
        C = R.choice([1, 2, 4])
        group = R.choice([g for g in (1, 2) if C % g == 0])
        M = group * R.randint(1, 2)
        ins = [R.randint(3, 6) for _ in range(sp)]
        ks = [R.randint(1, 3) for _ in range(sp)]
        st = [R.randint(1, 2) for _ in range(sp)]
        ds = [R.randint(1, 2) for _ in range(sp)]
        pads = [R.randint(0, 1) for _ in range(2 * sp)]
        outs = [osz(ins[j], ks[j], st[j], pads[j], pads[j + sp], ds[j]) for j in range(sp)]
        if min(outs) < 1:
            continue
        kw = dict(strides=st, pads=pads, dilations=ds, group=group)
        which = R.choice(["Conv", "ConvTranspose", "ConvInteger", "QLinearConv"])
        if which in ("Conv", "ConvTranspose"):
            x = rng.standard_normal([2, C] + ins).astype(np.float32)
            if which == "Conv":
                w = rng.standard_normal([M, C // group] + ks).astype(np.float32)
                c.check("Conv %s" % kw, helper.make_node("Conv", ["X", "W", "B"], ["Y"], **kw),
                        [("X", x)], [("Y", np.float32, [2, M] + outs)], 11,
                        [("W", w), ("B", rng.standard_normal([M]).astype(np.float32))])
            else:
                wt = rng.standard_normal([C, M // group] + ks).astype(np.float32)
                op_ = [R.randint(0, s - 1) for s in st]
                kw["output_padding"] = op_
                to = [st[j] * (ins[j] - 1) + op_[j] + (ks[j] - 1) * ds[j] + 1 - pads[j] -
                      pads[j + sp] for j in range(sp)]
                c.check("ConvTranspose %s" % kw,
                        helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **kw),
                        [("X", x)], [("Y", np.float32, [2, M] + to)], 11, [("W", wt)])
            continue
        xdt, wdt = R.choice([np.uint8, np.int8]), R.choice([np.uint8, np.int8])
        x, w = q8(rng, xdt, [2, C] + ins), q8(rng, wdt, [M, C // group] + ks)
        if which == "ConvInteger":
            inits = [("W", w), ("XZ", q8(rng, xdt, [])),
                     ("WZ", q8(rng, wdt, [M] if R.random() < 0.5 else []))]
            c.check("ConvInteger %s" % kw,
                    helper.make_node("ConvInteger", ["X", "W", "XZ", "WZ"], ["Y"], **kw),
                    [("X", x)], [("Y", np.int32, [2, M] + outs)], 10, inits, 0, 0)
        else:
            ydt = R.choice([np.uint8, np.int8])
            ws = rng.uniform(0.005, 0.05, [M] if R.random() < 0.5 else []).astype(np.float32)
            inits = [("XS", np.array(0.05, np.float32)), ("XZ", q8(rng, xdt, [])), ("W", w),
                     ("WS", ws), ("WZ", q8(rng, wdt, ws.shape)),
                     ("YS", np.array(R.uniform(0.5, 3), np.float32)), ("YZ", q8(rng, ydt, [])),
                     ("B", rng.integers(-2000, 2000, [M]).astype(np.int32))]
            c.check("QLinearConv %s" % kw,
                    helper.make_node("QLinearConv",
                                     ["X", "XS", "XZ", "W", "WS", "WZ", "YS", "YZ", "B"], ["Y"],
                                     **kw),
                    [("X", x)], [("Y", ydt, [2, M] + outs)], 10, inits, 0, 0)


def products(c, R, rng, n):
    for _ in range(n):
        ql = R.random() < 0.5
        adt, bdt = R.choice([np.uint8, np.int8]), R.choice([np.uint8, np.int8])
        M, K, N = R.randint(1, 9), R.randint(1, 40), R.randint(1, 9)
        ashape = R.choice([[], [2], [3, 2]]) + [M, K]
        bshape = R.choice([[], [2], [1]]) + [K, N]
        a, b = q8(rng, adt, ashape), q8(rng, bdt, bshape)
        out = list(np.matmul(a.astype(np.int64), b.astype(np.int64)).shape)
        if not ql:
            inits = [("AZ", q8(rng, adt, [M] if R.random() < 0.5 else [])),
                     ("BZ", q8(rng, bdt, [N] if R.random() < 0.5 else []))]
            c.check("MatMulInteger %s %s" % (ashape, bshape),
                    helper.make_node("MatMulInteger", ["A", "B", "AZ", "BZ"], ["Y"]),
                    [("A", a), ("B", b)], [("Y", np.int32, out)], 10, inits, 0, 0)
        else:
            ydt = R.choice([np.uint8, np.int8])
            sa = rng.uniform(0.01, 0.1, [M] if R.random() < 0.4 else []).astype(np.float32)
            sb = rng.uniform(0.01, 0.1, [N] if R.random() < 0.4 else []).astype(np.float32)
            inits = [("SA", sa), ("ZA", q8(rng, adt, sa.shape)), ("SB", sb),
                     ("ZB", q8(rng, bdt, sb.shape)),
                     ("SY", np.array(R.uniform(0.5, 4.0), np.float32)), ("ZY", q8(rng, ydt, []))]
            c.check("QLinearMatMul %s %s" % (ashape, bshape),
                    helper.make_node("QLinearMatMul",
                                     ["A", "SA", "ZA", "B", "SB", "ZB", "SY", "ZY"], ["Y"]),
                    [("A", a), ("B", b)], [("Y", ydt, out)], 10, inits, 0, 0)


EQUATIONS = [("ij,jk->ik", [[33, 20], [20, 17]]), ("ki,kj->ij", [[20, 33], [20, 17]]),
             ("ij,kj->ik", [[33, 20], [17, 20]]),
             ("bhqd,bhkd->bhqk", [[2, 3, 19, 8], [2, 3, 21, 8]]),
             ("bi,bj->bij", [[4, 5], [4, 6]]), ("abcd,dc->ab", [[2, 3, 4, 5], [5, 4]]),
             ("ij,jk->ki", [[4, 5], [5, 6]]), ("ij,bjk->bik", [[4, 5], [2, 5, 6]]),
             ("...ij,...jk", [[2, 1, 3, 4], [5, 4, 2]]), ("ij->ji", [[3, 4]]), ("ij->i", [[3, 4]]),
             ("...ii->...i", [[2, 3, 4, 4]]), ("ii", [[4, 4]]), ("iij->j", [[3, 3, 2]]),
             ("i,i", [[5], [5]]), ("Ab,bC->AC", [[2, 3], [3, 2]]), ("ij,j->i", [[3, 0], [0]])]


def misc(c, R, rng, n):
    for eq, shapes in EQUATIONS:
        dt = R.choice([np.float32, np.float32, np.float64, np.int64, np.int32])
        ins = [("x%d" % k, (rng.standard_normal(s) * 3).astype(dt)) for k, s in enumerate(shapes)]
        out = np.einsum(eq, *[a for _, a in ins])
        c.check("Einsum %s %s" % (eq, dt.__name__),
                helper.make_node("Einsum", [nm for nm, _ in ins], ["Y"], equation=eq), ins,
                [("Y", dt, list(out.shape))], 12)
    for axes in [None, [0, 2, 3], [1], [-1], [2, 3]]:
        x = rng.standard_normal([2, 3, 4, 5]).astype(np.float32)
        c.check("MVN %s" % axes, helper.make_node("MeanVarianceNormalization", ["X"], ["Y"],
                **({} if axes is None else {"axes": axes})),
                [("X", x)], [("Y", np.float32, [2, 3, 4, 5])], 13)
    for _ in range(n):
        dt = R.choice([np.float32, np.int64, np.uint8, np.float16, np.bool_])
        ba = R.choice([0, 1])
        shape = [5, 3, 2] if ba == 1 else [3, 5, 2]
        x = (rng.standard_normal(shape) * 10).astype(dt)
        lens = rng.integers(0, 6, [3]).astype(R.choice([np.int32, np.int64]))
        c.check("ReverseSequence", helper.make_node("ReverseSequence", ["X", "L"], ["Y"],
                batch_axis=ba, time_axis=1 - ba), [("X", x), ("L", lens)],
                [("Y", dt, shape)], 10)
    for sp, ks, st in [(2, [2, 2], [2, 2]), (2, [3, 3], [1, 1]), (1, [2], [2]),
                       (3, [2, 2, 2], [2, 2, 2])]:
        implied = [2, 3] + [(3 - 1) * s + k for k, s in zip(ks, st)]
        x = rng.standard_normal([2, 3] + [3] * sp).astype(np.float32)
        idx = rng.integers(0, int(np.prod(implied)), x.shape).astype(np.int64)
        bigger = R.random() < 0.5
        shape = implied[:2] + [d + 1 for d in implied[2:]] if bigger else implied
        names = ["X", "I"] + (["S"] if bigger else [])
        c.check("MaxUnpool %s" % ks, helper.make_node("MaxUnpool", names, ["Y"],
                kernel_shape=ks, strides=st), [("X", x), ("I", idx)],
                [("Y", np.float32, shape)], 11,
                [("S", np.array(shape, np.int64))] if bigger else [])
    for nel, kind in [(5, "rand"), (3000, "rand"), (70000, "rand"), (100, "zero"), (100, "nan")]:
        x = (rng.standard_normal([nel]) * 5).astype(np.float32)
        if kind == "zero":
            x[:] = 0
        if kind == "nan":
            x[::7] = np.nan
        c.check("DynamicQuantizeLinear %d %s" % (nel, kind),
                helper.make_node("DynamicQuantizeLinear", ["X"], ["Y", "S", "Z"]), [("X", x)],
                [("Y", np.uint8, [nel]), ("S", np.float32, []), ("Z", np.uint8, [])], 11, (), 0,
                0)
    for shape in [[3, 3], [2, 4, 4], [7, 7], [0, 3, 3]]:
        dt = R.choice([np.float32, np.float64])
        c.check("Det %s" % shape, helper.make_node("Det", ["X"], ["Y"]),
                [("X", rng.standard_normal(shape).astype(dt))], [("Y", dt, shape[:-2])], 11)
    for _ in range(n):
        N, C, H, W, Rn = R.randint(1, 3), R.randint(1, 3), R.randint(4, 12), R.randint(4, 12), 4
        lo = rng.uniform(-2, 8, [Rn, 2])
        rois = np.concatenate([lo, lo + rng.uniform(0, 8, [Rn, 2])], 1).astype(np.float32)
        kw = dict(output_height=R.randint(1, 4), output_width=R.randint(1, 4),
                  sampling_ratio=R.choice([0, 1, 2]), spatial_scale=R.choice([1.0, 0.5]),
                  mode=R.choice(["avg", "max"]),
                  coordinate_transformation_mode=R.choice(["half_pixel", "output_half_pixel"]))
        c.check("RoiAlign %s" % kw, helper.make_node("RoiAlign", ["X", "rois", "bi"], ["Y"], **kw),
                [("X", rng.standard_normal([N, C, H, W]).astype(np.float32)), ("rois", rois),
                 ("bi", rng.integers(0, N, [Rn]).astype(np.int64))],
                [("Y", np.float32, [Rn, C, kw["output_height"], kw["output_width"]])], 16)


def movement(c, R, rng, n):
    for _ in range(n):
        rank = R.randint(1, 4)
        shape = [R.randint(1, 6) for _ in range(rank)]
        shape[0] = max(shape[0], 70 // int(np.prod(shape[1:])) + 1)
        dt = R.choice([np.float32, np.int64, np.uint8, np.float16, np.int32, np.float64])
        mode = R.choice(["constant", "reflect", "edge"])
        pads = [R.randint(-(d // 2) if R.random() < 0.2 else 0, 7) for d in shape * 2]
        outs = [shape[d] + pads[d] + pads[d + rank] for d in range(rank)]
        x = (rng.standard_normal(shape) * 10).astype(dt)
        inits = [("P", np.array(pads, np.int64))]
        names = ["X", "P"]
        if mode == "constant" and R.random() < 0.6:
            names.append("V")
            inits.append(("V", np.array(rng.standard_normal() * 5).astype(dt)))
        c.check("Pad %s %s %s" % (mode, shape, pads), helper.make_node("Pad", names, ["Y"],
                mode=mode), [("X", x)], [("Y", dt, outs)], 13, inits)
        oshape = [70] + [R.randint(1, 5) for _ in range(R.randint(0, 3))]
        xs = [d if R.random() < 0.5 else 1 for d in oshape[R.randint(0, len(oshape)):]]
        dt = R.choice([np.float32, np.int64, np.bool_, np.int8])
        c.check("Expand %s -> %s" % (xs, oshape), helper.make_node("Expand", ["X", "S"], ["Y"]),
                [("X", (rng.standard_normal(xs) * 10).astype(dt))], [("Y", dt, oshape)], 13,
                [("S", np.array(oshape, np.int64))])
    for _ in range(n):
        dt = R.choice([np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8])
        shape = [R.randint(1, 30) for _ in range(R.randint(1, 3))]
        axis = R.randint(-len(shape), len(shape) - 1)
        if dt in (np.float32, np.float64):
            x = np.round(rng.standard_normal(shape) * 3).astype(dt)
            if R.random() < 0.3:
                x.ravel()[::5] = np.nan
        else:
            x = rng.integers(0 if dt == np.uint8 else -20, 20, shape).astype(dt)
        k = R.randint(0, shape[axis])
        oshape = list(shape)
        oshape[axis] = k
        c.check("TopK %s axis %d k %d" % (shape, axis, k),
                helper.make_node("TopK", ["X", "K"], ["V", "I"], axis=axis,
                                 largest=R.choice([0, 1])),
                [("X", x)], [("V", dt, oshape), ("I", np.int64, oshape)], 11,
                [("K", np.array([k], np.int64))], 0, 0)
        shape = [R.randint(1, 6) for _ in range(R.randint(1, 3))]
        depth = R.randint(1, 8)
        idt, vdt = R.choice([np.int32, np.int64, np.float32]), R.choice([np.float32, np.uint8])
        axis = R.randint(-len(shape) - 1, len(shape))
        oshape = list(shape)
        oshape.insert(axis if axis >= 0 else axis + len(shape) + 1, depth)
        c.check("OneHot %s depth %d axis %d" % (shape, depth, axis),
                helper.make_node("OneHot", ["I", "D", "V"], ["Y"], axis=axis),
                [("I", rng.integers(-depth - 2, depth + 2, shape).astype(idt))],
                [("Y", vdt, oshape)], 11,
                [("D", np.array([depth], np.int64)), ("V", np.array([2, 7]).astype(vdt))], 0, 0)


def signal_and_norm(c, R, rng, n):
    for _ in range(n):
        dt = R.choice([np.float32, np.float64])
        rank = R.randint(3, 4)
        shape = [R.randint(1, 3)] + [R.randint(1, 20) for _ in range(rank - 2)] + [R.choice([1, 2])]
        axis = R.randint(1, rank - 2)
        onesided = shape[-1] == 1 and R.random() < 0.5
        L = shape[axis] if R.random() < 0.5 else R.randint(1, 30)
        oshape = list(shape)
        oshape[axis] = L // 2 + 1 if onesided else L
        oshape[-1] = 2
        c.check("DFT %s axis %d length %d" % (shape, axis, L),
                helper.make_node("DFT", ["X", "L"], ["Y"], axis=axis, onesided=int(onesided),
                                 inverse=int(R.random() < 0.3)),
                [("X", rng.standard_normal(shape).astype(dt))], [("Y", dt, oshape)], 17,
                [("L", np.array(L, np.int64))], 1e-4, 1e-4)
        comps = R.choice([1, 2])
        onesided = comps == 1 and R.random() < 0.7
        Ls = R.randint(10, 60)
        N, step = R.randint(1, Ls), R.randint(1, 8)
        x = rng.standard_normal([2, Ls, comps]).astype(dt)
        frames = (Ls - N) // step + 1
        c.check("STFT %s N %d step %d" % (list(x.shape), N, step),
                helper.make_node("STFT", ["X", "S", "W"], ["Y"], onesided=int(onesided)),
                [("X", x)], [("Y", dt, [2, frames, N // 2 + 1 if onesided else N, 2])], 17,
                [("S", np.array(step, np.int64)), ("W", rng.uniform(0, 1, [N]).astype(dt))],
                1e-4, 1e-4)
    for shape in [[2, 3], [4, 2, 3, 3], [1, 5, 2, 2, 2]]:
        C = shape[1]
        inits = [(k, rng.standard_normal([C]).astype(np.float32)) for k in "SBM"]
        inits.append(("V", rng.uniform(0.5, 2, [C]).astype(np.float32)))
        c.check("BatchNormalization training %s" % shape,
                helper.make_node("BatchNormalization", ["X", "S", "B", "M", "V"],
                                 ["Y", "RM", "RV"], training_mode=1, momentum=0.8),
                [("X", rng.standard_normal(shape).astype(np.float32))],
                [("Y", np.float32, shape), ("RM", np.float32, [C]), ("RV", np.float32, [C])], 15,
                inits)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cli, work = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    scale = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    devs = subprocess.run([cli, "devices"], capture_output=True, text=True).stdout
    if "opencl" not in devs:
        print("no OpenCL device: skipped")
        sys.exit(77)
    shutil.rmtree(work, ignore_errors=True)
    c = Checker(cli, work)
    R, rng = random.Random(seed), np.random.default_rng(seed)
    count = lambda k: max(1, int(k * scale))
    recurrent(c, R, rng, count(60))
    pooling(c, R, rng, count(20))
    convolutions(c, R, rng, count(24))
    products(c, R, rng, count(12))
    misc(c, R, rng, count(4))
    movement(c, R, rng, count(10))
    signal_and_norm(c, R, rng, count(6))
    print("%d cases, %d failures" % (c.cases, c.failures))
    sys.exit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
