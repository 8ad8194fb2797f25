#!/bin/bash
# faces.js with images the decoder refuses among good ones: one stderr line naming each bad
# image, exit status 1, and the good image still in the output with the golden file's faces.
# Also: bad usage exits 2 with one line on stderr.
#
#   tests/tools/oracle/oracle_bad_input.sh VG_DECODE SOURCE_ROOT
#
# No `set -e`: every check below runs and reports, and the script fails at the end if any did.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fails=0
check() { # check STATUS MESSAGE: STATUS is the $? of the assertion just run
  if [ "$1" -ne 0 ]; then echo "FAIL $2"; fails=$((fails + 1)); else echo "ok   $2"; fi
}

# sample1.jpg cut off after 2000 bytes (inside its EXIF/ICC headers: the frame header, at byte
# 4332, is gone), the same cut in the middle of the scan data (libjpeg only warns "Premature end
# of JPEG file" and pads with grey; the decoder must still refuse it), and 4096 bytes of noise
# that start with neither a JPEG nor a PNG signature (seeded, so the test is reproducible).
set -e
head -c 2000 "$demo/sample1.jpg" > "$tmpdir/truncated.jpg"
head -c 72000 "$demo/sample1.jpg" > "$tmpdir/midscan.jpg"
node -e '
  let x = 0x9e3779b9 >>> 0; const b = Buffer.alloc(4096);
  for (let i = 0; i < b.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff; }
  b[0] = 0x42; // never 0xff (JPEG) or 0x89 (PNG)
  require("fs").writeFileSync(process.argv[1], b);' "$tmpdir/noise.jpg"
cp "$demo/sample1.jpg" "$tmpdir/sample1.jpg"
set +e

# Bad images before and after the good one: processing must go on past a failure.
(cd "$tmpdir" && node "$oracle/faces.js" --decoder "$decoder" --models "$models" \
  truncated.jpg sample1.jpg midscan.jpg noise.jpg) > "$tmpdir/out.json" 2> "$tmpdir/err"
rc=$?
echo "--- faces.js stderr:"; cat "$tmpdir/err"; echo "---"
[ "$rc" -eq 1 ]; check $? "exit status is 1 (got $rc)"
[ "$(grep -c 'truncated\.jpg' "$tmpdir/err")" -eq 1 ]; check $? "one stderr line names truncated.jpg"
[ "$(grep -c 'midscan\.jpg' "$tmpdir/err")" -eq 1 ]; check $? "one stderr line names midscan.jpg"
[ "$(grep -c 'noise\.jpg' "$tmpdir/err")" -eq 1 ]; check $? "one stderr line names noise.jpg"
! grep -q 'sample1\.jpg' "$tmpdir/err"; check $? "no stderr line names sample1.jpg"

# stdout: exactly the good image, and its faces match the golden file's sample1.jpg.
node -e '
  const fs = require("fs");
  const out = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const g = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const paths = out.images.map((i) => i.path);
  if (paths.length !== 1 || paths[0] !== "sample1.jpg") {
    console.log(`output holds images ${JSON.stringify(paths)}, expected ["sample1.jpg"]`); process.exit(1);
  }
  fs.writeFileSync(process.argv[3], JSON.stringify({ images: g.images.filter((i) => i.path === "sample1.jpg") }));
' "$tmpdir/out.json" "$golden" "$tmpdir/expected.json"
check $? "stdout holds only sample1.jpg"
node "$oracle/compare.js" "$tmpdir/expected.json" "$tmpdir/out.json"
check $? "sample1.jpg faces equal the golden file's"

# Bad usage: no images.
node "$oracle/faces.js" --decoder "$decoder" --models "$models" > "$tmpdir/out2" 2> "$tmpdir/err2"
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l < "$tmpdir/err2")" -eq 1 ] && [ ! -s "$tmpdir/out2" ]
check $? "no images: exit 2 (got $rc), one usage line on stderr, nothing on stdout"

[ "$fails" -eq 0 ] || { echo "oracle_bad_input: $fails checks failed"; exit 1; }
echo "oracle_bad_input: all checks passed"
