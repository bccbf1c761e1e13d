#!/usr/bin/env python3
"""Writes the bundled example: a small image classifier (Conv, BatchNormalization, Relu,
MaxPool, Conv, GlobalAveragePool, Flatten, Gemm, Softmax) with fixed random weights, an input,
and the expected output computed independently with numpy in float64.

Usage: make_example.py OUT_DIR  -> tiny_cnn.onnx, input.npy, expected.npy
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv2d(x, w, b, stride=1, pad=0):
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, k, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + b.reshape(1, -1, 1, 1)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20261125)
    f32 = np.float32
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(f32)
    b1 = (rng.standard_normal(8) * 0.1).astype(f32)
    gamma = rng.uniform(0.5, 1.5, 8).astype(f32)
    beta = (rng.standard_normal(8) * 0.1).astype(f32)
    mean = (rng.standard_normal(8) * 0.1).astype(f32)
    var = rng.uniform(0.5, 1.5, 8).astype(f32)
    w2 = (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(f32)
    b2 = (rng.standard_normal(16) * 0.1).astype(f32)
    wf = (rng.standard_normal((10, 16)) * 0.5).astype(f32)
    bf = (rng.standard_normal(10) * 0.1).astype(f32)
    x = rng.standard_normal((1, 3, 32, 32)).astype(f32)

    inits = [numpy_helper.from_array(a, n) for a, n in [
        (w1, "w1"), (b1, "b1"), (gamma, "gamma"), (beta, "beta"), (mean, "mean"), (var, "var"),
        (w2, "w2"), (b2, "b2"), (wf, "wf"), (bf, "bf")]]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn1"],
                         name="bn1", epsilon=1e-5),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="tessera-example")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out_dir, "tiny_cnn.onnx"))
    np.save(os.path.join(out_dir, "input.npy"), x)

    # The reference, in float64, from the definitions of the operators.
    d = x.astype(np.float64)
    d = conv2d(d, w1.astype(np.float64), b1, pad=1)
    d = (d - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-5) \
        * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    d = np.maximum(d, 0)
    d = d.reshape(1, 8, 16, 2, 16, 2).max(axis=(3, 5))
    d = np.maximum(conv2d(d, w2.astype(np.float64), b2, stride=2, pad=1), 0)
    d = d.mean(axis=(2, 3))
    d = d @ wf.T.astype(np.float64) + bf
    e = np.exp(d - d.max(axis=1, keepdims=True))
    np.save(os.path.join(out_dir, "expected.npy"), (e / e.sum(axis=1, keepdims=True)).astype(f32))
    print(f"wrote {out_dir}/tiny_cnn.onnx, input.npy, expected.npy")


if __name__ == "__main__":
    main()
