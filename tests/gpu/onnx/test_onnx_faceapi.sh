#!/bin/sh
# Proof 1's set-up: export face-api's recognition net to an ONNX model folder in the build
# directory (tools/onnx-export-faceapi; the weights are never committed), then run the test.
#   test_onnx_faceapi.sh EXPORTER TEST SOURCE_ROOT OUT_DIR
set -u
exporter=$1
test=$2
srcroot=$3
out=$4
models=$srcroot/fetched/face-api-1.7.15/model

for f in "$models/face_recognition_model-weights_manifest.json" "$srcroot/fetched/face-api-1.7.15/demo/sample6.jpg"; do
  if [ ! -f "$f" ]; then
    echo "test_onnx_faceapi: missing $f: run tools/bootstrap"
    if [ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ]; then exit 1; fi
    exit 77
  fi
done
mkdir -p "$out" || exit 1
"$exporter" "$models" "$out" || exit 1
exec "$test" "$srcroot" "$out"
