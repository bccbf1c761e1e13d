#!/usr/bin/env python3
"""Checks the exported symbol list of libtessera against the public header.

    check_exports.py LIBTESSERA.so include/tessera/tessera.h

Every defined dynamic symbol must start with "tsr_" and must not be an internal one ("tsr__")
or a CPU kernel ("cpu_"); every function the header declares with TSR_API must be exported.
Prints one line per check and a final "N passed, N failed"; exits non-zero on any failure.
"""
import re
import subprocess
import sys

lib, header = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))
    return ok


p = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
if not check("nm -D --defined-only reads the library", p.returncode == 0, p.stderr.strip()):
    print(f"{passed} passed, {failed} failed")
    sys.exit(1)

exported = {}
for line in p.stdout.splitlines():
    parts = line.split()
    if len(parts) >= 3:
        exported[parts[2].split("@")[0]] = parts[1]

foreign = sorted(s for s in exported if not s.startswith("tsr_"))
internal = sorted(s for s in exported if s.startswith("tsr__"))
check("every exported symbol starts with tsr_", not foreign, ", ".join(foreign[:20]))
check("no internal tsr__ symbol is exported", not internal, ", ".join(internal[:20]))
check("no cpu_ kernel symbol is exported", not any("cpu_" in s for s in exported),
      ", ".join(s for s in exported if "cpu_" in s))

text = open(header, encoding="utf-8").read()
text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
text = re.sub(r"#[^\n]*(\\\n[^\n]*)*", " ", text)  # macros: the TSR_API definitions themselves
declared = set(re.findall(r"\bTSR_API\b[^;{]*?\b(tsr_\w+)\s*\(", text, flags=re.S))
check("the header declares TSR_API functions", len(declared) > 20, f"found {len(declared)}")
missing = sorted(declared - set(exported))
check(f"all {len(declared)} TSR_API functions are exported", not missing, ", ".join(missing))
not_code = sorted(s for s in declared if s in exported and exported[s] not in ("T", "W", "i"))
check("the TSR_API symbols are functions", not not_code,
      ", ".join(f"{s} ({exported[s]})" for s in not_code))
undeclared = sorted(set(exported) - declared)
check("every exported symbol is declared TSR_API in tessera.h", not undeclared,
      ", ".join(undeclared[:20]))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
