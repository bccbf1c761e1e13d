#!/usr/bin/env bash
# Sets up, builds and runs every test: the unit suites, the ONNX node suite on every device,
# the end-to-end CLI and embedding tests, published models against ONNX Runtime; then the unit suites again under AddressSanitizer and
# UndefinedBehaviorSanitizer, once more in a build without AVX2 code, and the thread pool's suite
# under ThreadSanitizer. The last line counts meson tests over the four builds.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || exit 1

status=0
[ -d build ] || meson setup build || exit 1
meson configure build -Dreal_models=enabled || exit 1
ninja -C build || exit 1
meson test -C build --print-errorlogs --num-processes 2 || status=1

# Sanitizers: a clang build with ASan + UBSan (LeakSanitizer included) running the unit suites,
# the end-to-end tests and the ONNX node suite on every device (every kernel on the suite's
# inputs, out-of-bounds reads and writes caught); the model suites run in the plain build only.
if [ ! -d build-asan ]; then
  CC=clang-14 meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debug || exit 1
fi
ninja -C build-asan || exit 1
# intercept_tls_get_addr=0: up to LLVM 16 the sanitizer runtime's __tls_get_addr interceptor
# takes a dynamic TLS block that happens to start 16 bytes into a page for a pre-2.25 glibc
# header and reads the two words before it; LeakSanitizer's tracer then dies with "Tracer
# caught signal 11" at exit, now and then, in processes that load PoCL (its LLVM allocates
# dynamic TLS). Tessera itself has no thread-local storage.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:intercept_tls_get_addr=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-asan --print-errorlogs --num-processes 2 --no-suite models || status=1

# A build without any AVX2 code (-Dcpu_simd=disabled), as on a machine whose compiler or CPU
# has none (ARM, older x86-64): the generic kernels must build on their own and pass the unit
# suites (the AVX2 builds run them too, under TESSERA_CPU_GENERIC, but share their code).
if [ ! -d build-generic ]; then
  meson setup build-generic -Dcpu_simd=disabled || exit 1
fi
ninja -C build-generic || exit 1
meson test -C build-generic --print-errorlogs --num-processes 2 --no-suite slow --no-suite models \
  || status=1

# ThreadSanitizer over the thread pool's suite: the pool's hand-over of jobs and the scratch
# slot that kernels on several threads take blocks from and give back to, lock-free (a
# use-after-free there showed under TSan in two runs of three and in no other build).
if [ ! -d build-tsan ]; then
  CC=clang-14 meson setup build-tsan -Db_sanitize=thread -Db_lundef=false --buildtype=debug \
    || exit 1
fi
ninja -C build-tsan tests/test_threadpool || exit 1
TSAN_OPTIONS=halt_on_error=1 meson test -C build-tsan --no-rebuild --print-errorlogs threadpool \
  || status=1

/usr/bin/python3 scripts/summarize_tests.py build/meson-logs/testlog.json \
  build-asan/meson-logs/testlog.json build-generic/meson-logs/testlog.json \
  build-tsan/meson-logs/testlog.json || status=1
exit $status
