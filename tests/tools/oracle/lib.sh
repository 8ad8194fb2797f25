# Shared by tests/tools/oracle/*.sh (sourced, not run). Sets up paths from the test's arguments
# ($1 = vg-decode binary, $2 = source root) and skips or fails when prerequisites are missing.
#
# tools/bootstrap fetches the face-api model/demo photos and runs `npm ci` in tools/oracle;
# without them these tests cannot run. They are skipped (exit 77, meson's skip code) unless
# VIGIL_REQUIRE_FETCHED=1, as CI sets it, turns a missing prerequisite into a failure.

if [ $# -ne 2 ]; then
  echo "usage: $0 VG_DECODE SOURCE_ROOT" >&2
  exit 2
fi
# Absolute paths: the tests cd into the photo folder so that "path" is a bare file name.
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
decoder=$(abs "$1")
srcroot=$(abs "$2")
fetched=$srcroot/fetched/face-api-1.7.15
demo=$fetched/demo
models=$fetched/model
oracle=$srcroot/tools/oracle
golden=$srcroot/tests/data/golden/demo-faces.json

missing() {
  echo "oracle: missing $1: run tools/bootstrap"
  if [ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ]; then exit 1; fi
  exit 77
}

[ -d "$fetched" ] || missing "$fetched"
for f in "$demo"/sample{1..6}.jpg "$models/ssd_mobilenetv1_model-weights_manifest.json" \
         "$models/face_landmark_68_model-weights_manifest.json" \
         "$models/face_recognition_model-weights_manifest.json"; do
  [ -f "$f" ] || missing "$f"
done
[ -d "$oracle/node_modules/@vladmandic/face-api" ] || missing "$oracle/node_modules"
command -v node > /dev/null || missing "node"

# The decoder and the golden file come with the source tree and the build: their absence is a
# broken build, not a missing download.
[ -x "$decoder" ] || { echo "oracle: no decoder at $decoder"; exit 1; }
[ -f "$golden" ] || { echo "oracle: no golden file $golden"; exit 1; }

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-oracle-test.XXXXXX")
trap 'rm -rf "$tmpdir"' EXIT
