#!/bin/bash
# The face-api.js oracle (tools/oracle/faces.js) must still reproduce the committed golden file
# on the six demo photos: same pixels (rgb_sha256), same 22 faces, boxes and landmarks within
# 1e-3 px, descriptors within L2 1e-4 (compare.js defaults; why in compare.js).
#
#   tests/tools/oracle/oracle_golden.sh VG_DECODE SOURCE_ROOT
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The golden file itself must be what face-nets.md describes (6 photos, 22 faces at
# minConfidence 0.5), so that an emptied or truncated golden file cannot pass.
node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const n = d.images.reduce((s, i) => s + i.faces.length, 0);
  if (d.images.length !== 6 || n !== 22) {
    console.log(`oracle: golden file holds ${d.images.length} images, ${n} faces; expected 6, 22`);
    process.exit(1);
  }' "$golden"

# Run from the demo folder so each "path" is the bare file name, as in the golden file.
rc=0
(cd "$demo" && node "$oracle/faces.js" --decoder "$decoder" --models "$models" \
  sample1.jpg sample2.jpg sample3.jpg sample4.jpg sample5.jpg sample6.jpg) \
  > "$tmpdir/actual.json" 2> "$tmpdir/stderr" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "oracle: faces.js exited $rc on the demo photos:"
  cat "$tmpdir/stderr"
  exit 1
fi
node "$oracle/compare.js" "$golden" "$tmpdir/actual.json"
