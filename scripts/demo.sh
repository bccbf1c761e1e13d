#!/usr/bin/env bash
# The main job: set up, build, then run the bundled example model on the best device and show
# where it ran and how long each device took.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
[ -d build ] || meson setup build
ninja -C build

models=build/example
mkdir -p "$models"
/usr/bin/python3 examples/models/make_example.py "$models"

# Plugins built in this tree live beside their sources in build/; an installed Tessera finds
# them beside libtessera.so instead.
export TESSERA_PLUGIN_PATH="$PWD/build/devices/opencl${TESSERA_PLUGIN_PATH:+:$TESSERA_PLUGIN_PATH}"

echo
echo "== devices"
build/tessera devices
echo
echo "== plan"
build/tessera partition "$models/tiny_cnn.onnx"
echo
echo "== run (best device, 20 runs)"
build/tessera run "$models/tiny_cnn.onnx" --input "input=$models/input.npy" \
  --output-dir "$models/out" --device auto --repeat 20
/usr/bin/python3 examples/models/check_output.py "$models/expected.npy" "$models/out/probabilities.npy"

echo
echo "== latency per device (median of 50 runs after 5 warm-up runs)"
build/tessera bench "$models/tiny_cnn.onnx" --input "input=$models/input.npy" --device all \
  --warmup 5 --iterations 50
