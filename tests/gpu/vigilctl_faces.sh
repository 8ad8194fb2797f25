#!/bin/sh
# Integration: `vigilctl faces --json` on face-api's six demo photos equals the golden oracle
# output (tests/data/golden/demo-faces.json, face-api.js under tfjs) within the issue's
# tolerances: every face found, boxes and landmarks within 0.5 px, descriptors within L2 1e-3.
# Then what a user sees on bad input: a corrupt image gets one stderr line, the other images are
# still processed, the exit status is 1; text mode; unknown verb and missing model folder.
#   vigilctl_faces.sh VIGILCTL SOURCE_ROOT
set -u
vigilctl=$1
srcroot=$2
demo=$srcroot/fetched/face-api-1.7.15/demo
models=$srcroot/fetched/face-api-1.7.15/model
golden=$srcroot/tests/data/golden/demo-faces.json
compare=$srcroot/tools/oracle/compare.js

missing() {
  echo "vigilctl_faces: missing $1: run tools/bootstrap"
  if [ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ]; then exit 1; fi
  exit 77
}
for f in "$demo/sample1.jpg" "$demo/sample6.jpg" "$models/face_recognition_model.bin"; do
  [ -f "$f" ] || missing "$f"
done
command -v node > /dev/null || missing node

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# 1. the golden comparison
"$vigilctl" faces --json --models "$models" "$demo"/sample1.jpg "$demo"/sample2.jpg "$demo"/sample3.jpg \
  "$demo"/sample4.jpg "$demo"/sample5.jpg "$demo"/sample6.jpg > "$tmp/out.json" 2> "$tmp/err" \
  || bad "vigilctl faces exited $? on the demo photos: $(cat "$tmp/err")"
node "$compare" "$golden" "$tmp/out.json" --box-px 0.5 --landmark-px 0.5 --descriptor-l2 1e-3 \
  || bad "vigilctl faces differs from the golden oracle output"
[ -s "$tmp/err" ] && bad "stderr not empty on good input: $(cat "$tmp/err")"

# 1b. the tiny detector against face-api's TinyFaceDetector (inputSize 416, scoreThreshold 0.5):
# tests/gpu/golden-tiny.json was made by tools/oracle/faces.js with TinyFaceDetectorOptions
# in place of the SSD options (20 faces)
"$vigilctl" faces --json --tiny --models "$models" "$demo"/sample1.jpg "$demo"/sample2.jpg "$demo"/sample3.jpg \
  "$demo"/sample4.jpg "$demo"/sample5.jpg "$demo"/sample6.jpg > "$tmp/tiny.json" 2> "$tmp/err" \
  || bad "vigilctl faces --tiny exited $?: $(cat "$tmp/err")"
node "$compare" "$srcroot/tests/gpu/golden-tiny.json" "$tmp/tiny.json" --box-px 0.5 --landmark-px 0.5 \
  --descriptor-l2 1e-3 || bad "vigilctl faces --tiny differs from face-api's tiny detector"

# 2. a corrupt image among good ones: one stderr line, the good one still reported, exit 1
head -c 3000 "$demo/sample2.jpg" > "$tmp/truncated.jpg"
"$vigilctl" faces --json --models "$models" "$tmp/truncated.jpg" "$demo/sample1.jpg" \
  > "$tmp/mixed.json" 2> "$tmp/err"
rc=$?
[ "$rc" = 1 ] || bad "exit status $rc with a corrupt image, wanted 1"
[ "$(wc -l < "$tmp/err")" = 1 ] || bad "wanted one stderr line for the corrupt image, got: $(cat "$tmp/err")"
grep -q truncated.jpg "$tmp/err" || bad "the stderr line does not name the file"
node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (d.images.length !== 1 || !d.images[0].path.endsWith("sample1.jpg") || d.images[0].faces.length !== 3) process.exit(1);
' "$tmp/mixed.json" || bad "the good image was not reported with its 3 faces"

# 3. text for people
"$vigilctl" faces --models "$models" "$demo/sample1.jpg" > "$tmp/text" 2>&1 || bad "text mode failed"
grep -q "sample1.jpg: 1920x1280, 3 faces" "$tmp/text" || bad "text mode: $(head -1 "$tmp/text")"

# 4. usage errors: exit 2 with one line
"$vigilctl" nosuchverb > /dev/null 2> "$tmp/err"; rc=$?
[ "$rc" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] || bad "unknown verb: exit $rc, $(cat "$tmp/err")"
"$vigilctl" faces --models "$tmp" "$demo/sample1.jpg" > /dev/null 2> "$tmp/err"; rc=$?
[ "$rc" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] || bad "missing model folder: exit $rc, $(cat "$tmp/err")"

[ "$fail" = 0 ] && echo "vigilctl faces: 22 SSD and 20 tiny-detector faces equal to the oracle; bad input handled"
exit "$fail"
