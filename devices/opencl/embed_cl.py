#!/usr/bin/env python3
"""Embeds an OpenCL C source file in a C header as one string: embed_cl.py IN OUT NAME."""
import sys

src, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, encoding="utf-8") as f:
    text = f.read()
lines = ["/* Generated from %s by embed_cl.py; do not edit. */" % src.rsplit("/", 1)[-1],
         "static const char %s[] =" % name]
for line in text.splitlines():
    lines.append('    "%s\\n"' % line.replace("\\", "\\\\").replace('"', '\\"'))
lines[-1] += ";"
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
