#!/bin/sh
# Proof 2's set-up: the faceplugin model folder (fetched/ from tools/bootstrap, else fetched here
# into the build directory by tools/fetch-faceplugin), the onnxruntime-web oracle (its node
# modules from tools/bootstrap, else installed here into the build directory), then the test.
# Skips (77) only when the npm packages cannot be fetched. With VIGILCTL, also what a user sees:
# `vigilctl faces --json --models FOLDER` prints a 512-value descriptor for each of the 22 faces.
#   test_onnx_ort.sh TEST TEST_ONNX_IMPORT SOURCE_ROOT OUT_DIR [VIGILCTL]
set -u
test=$1
import=$2
srcroot=$3
out=$4
shift
faceapi=$srcroot/fetched/face-api-1.7.15
model=$srcroot/fetched/faceplugin-face-recognition-js-0.0.1
oracle=$srcroot/tests/gpu/onnx/oracle

skip() {
  echo "test_onnx_ort: skipped: $*"
  if [ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ]; then exit 1; fi
  exit 77
}
[ -f "$faceapi/model/ssd_mobilenetv1_model.bin" ] || skip "face-api's weights are not fetched (run tools/bootstrap)"
command -v node > /dev/null || skip "no node to run onnxruntime-web"
mkdir -p "$out" || exit 1
if [ ! -f "$model/.complete" ]; then
  model=$out/faceplugin-face-recognition-js-0.0.1
  "$srcroot/tools/fetch-faceplugin" "$out" "$faceapi/model" ||
    skip "npm faceplugin-face-recognition-js@0.0.1 could not be fetched"
fi
if [ ! -d "$oracle/node_modules/onnxruntime-web" ]; then
  mkdir -p "$out/oracle" && cp "$oracle/package.json" "$oracle/package-lock.json" "$oracle/run.js" "$out/oracle/" || exit 1
  oracle=$out/oracle
  [ -d "$oracle/node_modules/onnxruntime-web" ] ||
    (cd "$oracle" && npm ci --silent --no-audit --no-fund > npm.log 2>&1) ||
    skip "npm onnxruntime-web could not be installed (see $oracle/npm.log)"
fi
att=$srcroot/../shared/faces-eval/att
[ -d "$att" ] || att=
mkdir -p "$out/synthetic" && "$import" --write-corpus "$out/synthetic" > /dev/null || exit 1
"$test" "$model" "$oracle/run.js" "$out" "$srcroot" $att "--synthetic=$out/synthetic" || exit 1
if [ $# -ge 4 ]; then
  "$4" faces --json --models "$model" "$faceapi"/demo/sample[1-6].jpg > "$out/vigilctl.json" || exit 1
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const faces = j.images.flatMap((i) => i.faces);
    const ok = faces.length === 22 && faces.every((f) => f.descriptor.length === 512);
    console.log(`vigilctl faces: ${faces.length} faces, descriptor lengths ${[...new Set(faces.map((f) => f.descriptor.length))]}`);
    process.exit(ok ? 0 : 1);' "$out/vigilctl.json" || exit 1
fi
