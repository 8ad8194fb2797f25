#!/bin/sh
# Benchmark: the C face nets (oneDNN and reference, 1 and 2 threads) against face-api.js under
# tfjs-wasm on the same photos and pixels in the same run, with the ratios. Never gating.
#   bench_facenet.sh BENCH_FACENET VG_DECODE SOURCE_ROOT
set -u
bench=$1 decoder=$2 srcroot=$3
fetched=$srcroot/fetched/face-api-1.7.15
[ -f "$fetched/model/face_recognition_model.bin" ] || { echo "bench_facenet: no fetched model: run tools/bootstrap"; exit 77; }
rounds=${VIGIL_BENCH_ROUNDS:-5}
c1=$(OMP_NUM_THREADS=1 "$bench" "$srcroot" "$rounds") || exit 1
c2=$(OMP_NUM_THREADS=2 "$bench" "$srcroot" "$rounds") || exit 1
peer=""
if command -v node > /dev/null && [ -d "$srcroot/tools/oracle/node_modules/@vladmandic/face-api" ]; then
  peer=$(node "$srcroot/tests/gpu/bench_tfjs.js" "$srcroot/tools/oracle" "$decoder" "$fetched/model" \
         "$rounds" "$fetched"/demo/sample*.jpg) || peer=""
fi
printf '%s\n%s\n%s\n' "$c1" "$c2" "$peer"
get() { printf '%s\n' "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p" | head -1; }
if [ -n "$peer" ]; then
  pd=$(get "$peer" descriptor_ms); pf=$(get "$peer" detect_ms_per_frame)
  for line in "$(printf '%s\n' "$c1" | head -1)" "$(printf '%s\n' "$c2" | head -1)"; do
    cd_=$(get "$line" descriptor_ms); cf=$(get "$line" detect_ms_per_frame)
    echo "ratio vs tfjs-wasm ($(echo "$line" | cut -d' ' -f1-2)): descriptors x$(awk "BEGIN{printf \"%.1f\", $pd/$cd_}"), detection x$(awk "BEGIN{printf \"%.1f\", $pf/$cf}")"
  done
else
  echo "peer tfjs-wasm not available (node or tools/oracle/node_modules missing)"
fi
