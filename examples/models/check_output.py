#!/usr/bin/env python3
"""Compares an output .npy with the expected one: check_output.py EXPECTED ACTUAL [RTOL ATOL]."""
import sys

import numpy as np

expected, actual = np.load(sys.argv[1]), np.load(sys.argv[2])
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
atol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-5
if expected.shape != actual.shape or expected.dtype != actual.dtype:
    sys.exit(f"mismatch: expected {expected.dtype}{list(expected.shape)}, "
             f"got {actual.dtype}{list(actual.shape)}")
err = np.max(np.abs(expected.astype(np.float64) - actual)) if expected.size else 0.0
if not np.allclose(actual, expected, rtol=rtol, atol=atol):
    sys.exit(f"mismatch: max abs error {err:.3g} over tolerance (rtol {rtol}, atol {atol})")
print(f"output matches the reference (max abs error {err:.3g})")
