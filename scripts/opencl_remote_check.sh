#!/bin/bash
# The OpenCL plugin's checks on another machine (a GPU box without this project's build tools),
# from a build made here:
#
#   scripts/opencl_remote_check.sh stage DIR [BUILD] [MODELS]
#       copies into DIR what the checks need: the CLI, libtessera, the plugin, test_opencl,
#       test_opencl_lost and node_suite from BUILD (default build/, stripped of debug info),
#       the Debian libraries they load (libprotobuf-c, libsubunit, the Khronos ICD loader),
#       the ONNX node suite's data (packed), tests/ from this tree, and mobilenet_v2 and
#       squeezenet1_1 from the model zoo folder MODELS (default /tmp/zoo-models; skipped
#       when absent). About 30 MB.
#   DIR/run.sh [DEVICE]
#       there, from inside DIR: registers NVIDIA's ICD with the loader when the driver is
#       there and no .icd names it, lists the devices, and runs test_opencl, test_opencl_lost,
#       the node suite on DEVICE (default: the first OpenCL GPU, else the first OpenCL
#       device), and each model on the device against the CPU device (placement, largest
#       difference, latency). Needs bash and, for the model comparison, python3 with numpy.
#
# The machine must run x86-64 Linux with a glibc at least as new as this one's (Debian 12: 2.36).
set -eu
[ "${1:-}" = stage ] && [ $# -ge 2 ] || { sed -n 2,20p "$0"; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$2 build=${3:-$here/build} models=${4:-/tmp/zoo-models}
for f in tessera libtessera.so.0 devices/opencl/libtessera_opencl.so tests/test_opencl \
         tests/test_opencl_lost tests/conformance/node_suite tests/conformance/onnx-suite/node; do
  [ -e "$build/$f" ] || { echo "opencl_remote_check: $build/$f is missing (build with ninja first)" >&2; exit 1; }
done
rm -rf "$dir" && mkdir -p "$dir/b/devices/opencl" "$dir/b/tests/conformance" "$dir/lib" "$dir/models"
cp "$build/tessera" "$build/libtessera.so.0" "$dir/b/"
cp "$build/devices/opencl/libtessera_opencl.so" "$dir/b/devices/opencl/"
cp "$build/tests/test_opencl" "$build/tests/test_opencl_lost" "$dir/b/tests/"
cp "$build/tests/conformance/node_suite" "$dir/b/tests/conformance/"
find "$dir/b" -type f -exec strip --strip-debug {} +
for l in libprotobuf-c.so.1 libsubunit.so.0 libOpenCL.so.1; do
  path=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ {print $NF; exit}')
  [ -n "$path" ] || { echo "opencl_remote_check: $l is not installed here" >&2; exit 1; }
  cp -L "$path" "$dir/lib/"
done
tar -C "$build/tests/conformance" -cJf "$dir/suite.tar.xz" onnx-suite
cp -r "$here/tests" "$dir/src-tests"
for m in mobilenet_v2 squeezenet1_1; do
  [ -e "$models/$m.onnx" ] && cp "$models/$m.onnx" "$models/$m.input.npy" "$dir/models/"
done
cat > "$dir/run.sh" <<'EOF'
#!/bin/bash
set -u
D=$(cd "$(dirname "$0")" && pwd); B=$D/b
export LD_LIBRARY_PATH=$D/lib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
if command -v nvidia-smi >/dev/null && ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
  mkdir -p /etc/OpenCL/vendors && echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd
fi
export TESSERA_PLUGIN_PATH=$B/devices/opencl TSR_TEST_SRCDIR=$D/src-tests
export TSR_TEST_BUILDDIR=$B/tests CK_DEFAULT_TIMEOUT=120
$B/tessera devices
dev=${1:-$($B/tessera devices | awk '$3 == "opencl" && $2 == "gpu" {print $1; exit}')}
dev=${dev:-$($B/tessera devices | awk '$3 == "opencl" {print $1; exit}')}
[ -n "$dev" ] || { echo "run.sh: no OpenCL device"; exit 1; }
echo "== device $dev"
echo "== test_opencl"; timeout 600 $B/tests/test_opencl 2>&1 | tail -1
echo "== test_opencl_lost"; timeout 300 $B/tests/test_opencl_lost 2>&1 | tail -1
echo "== node suite"
[ -d $B/tests/conformance/onnx-suite ] || tar -C $B/tests/conformance -xJf $D/suite.tar.xz
timeout 600 $B/tests/conformance/node_suite $B/tests/conformance/onnx-suite/node \
  $D/src-tests/conformance --device "$dev" 2>&1 | tail -2
py=; for p in python3 /usr/bin/python3; do $p -c 'import numpy' 2>/dev/null && { py=$p; break; }; done
for f in $D/models/*.onnx; do
  [ -e "$f" ] || continue
  m=$(basename "$f" .onnx); in="--input input=$D/models/$m.input.npy"
  echo "== $m"
  $B/tessera partition "$f" --device "$dev,cpu" | awk -v d="$dev" '$3 == d {n++} END {print n " nodes on " d}'
  rm -rf /tmp/rc_gpu /tmp/rc_cpu
  $B/tessera run "$f" $in --device "$dev,cpu" --output-dir /tmp/rc_gpu > /dev/null
  $B/tessera run "$f" $in --device cpu --output-dir /tmp/rc_cpu > /dev/null
  if [ -n "$py" ]; then
    $py -c "import numpy as n,glob;[print(f.split('/')[-1], 'largest difference %.2e' % abs(n.load(f).astype(float) - n.load(f.replace('rc_gpu', 'rc_cpu'))).max()) for f in glob.glob('/tmp/rc_gpu/*.npy')]"
  else
    echo "no python3 with numpy here: outputs not compared"
  fi
  $B/tessera bench "$f" $in --device "$dev,cpu" --warmup 5 --iterations 30 | tail -1
done
EOF
chmod +x "$dir/run.sh"
du -sh "$dir"
