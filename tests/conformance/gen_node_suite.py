#!/usr/bin/env python3
"""Generates the ONNX backend node test suite from the system's python3-onnx package.

Usage: gen_node_suite.py OUT_DIR [STAMP]

onnx 1.12's generators still use np.float, np.int, np.bool and np.object, which numpy 1.24
removed; they are aliased back to the builtins here before the generators are imported.
Nothing generated is committed: the suite is written into the build folder.
"""
import os
import shutil
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")
for alias, builtin in (("float", float), ("int", int), ("bool", bool), ("object", object),
                       ("complex", complex), ("str", str)):
    if alias not in np.__dict__:
        setattr(np, alias, builtin)

from onnx.backend.test.cmd_tools import generate_data  # noqa: E402


def main():
    out = sys.argv[1]
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)

    class Args:
        output = out
        op_type = None

    generate_data(Args())
    count = len(os.listdir(os.path.join(out, "node")))
    print(f"generated {count} node tests into {out}/node (onnx {__import__('onnx').__version__})")
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(f"{count}\n")


if __name__ == "__main__":
    main()
