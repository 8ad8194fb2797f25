#!/bin/bash
# Regenerates tests/data/golden/demo-faces.json: the face-api.js oracle (tools/oracle/faces.js)
# run on the six demo photos of face-api 1.7.15, decoded by vg-decode.
#
#   tools/oracle/make-golden.sh [DECODER [FETCHED_DIR]]
#
# DECODER     vg-decode binary (default: $VG_DECODE, else build/tools/vg-decode)
# FETCHED_DIR what tools/bootstrap fetched for face-api (default: $VIGIL_FACEAPI_DIR, else
#             fetched/face-api-1.7.15); must hold demo/sample{1..6}.jpg and model/.
# Relative paths are taken from the repository root. Needs `npm ci` done in tools/oracle.
#
# Only regenerate the golden file on purpose (new model version, new decoder contract), and say
# why in the commit: tests/tools/oracle/oracle_golden.sh checks the oracle against it, and the C
# pipeline is checked against it too.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
decoder=${1:-${VG_DECODE:-build/tools/vg-decode}}
fetched=${2:-${VIGIL_FACEAPI_DIR:-fetched/face-api-1.7.15}}
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$root/$1" ;; esac; }
decoder=$(abspath "$decoder")
fetched=$(abspath "$fetched")
out=$root/tests/data/golden/demo-faces.json

[ -x "$decoder" ] || { echo "make-golden: no decoder at $decoder (build vg-decode first)" >&2; exit 1; }
[ -d "$fetched/demo" ] && [ -d "$fetched/model" ] ||
  { echo "make-golden: no demo/ and model/ in $fetched: run tools/bootstrap" >&2; exit 1; }
[ -d "$root/tools/oracle/node_modules" ] ||
  { echo "make-golden: no tools/oracle/node_modules: run tools/bootstrap (npm ci)" >&2; exit 1; }

tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.pretty"' EXIT
# cd into the demo folder so that each image's "path" is just its basename.
(cd "$fetched/demo" &&
  node "$root/tools/oracle/faces.js" --decoder "$decoder" --models "$fetched/model" \
    sample1.jpg sample2.jpg sample3.jpg sample4.jpg sample5.jpg sample6.jpg) > "$tmp"

# Pretty-print for reviewable diffs: objects indented by 2, each numeric array (box, a landmark,
# a descriptor) on one line. Numbers keep JSON.stringify's full round-trip precision.
node - "$tmp" > "$tmp.pretty" <<'EOF'
const doc = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const flat = (v) => Array.isArray(v) && v.every((x) => typeof x === 'number');
function fmt(v, ind) {
  const pad = ' '.repeat(ind + 2);
  if (flat(v)) return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    // landmarks: 68 short [x,y] pairs, kept on one line
    if (v.every(flat) && v.every((x) => x.length === 2)) return '[' + v.map((x) => JSON.stringify(x)).join(',') + ']';
    return '[\n' + v.map((x) => pad + fmt(x, ind + 2)).join(',\n') + '\n' + ' '.repeat(ind) + ']';
  }
  if (v && typeof v === 'object') {
    const ks = Object.keys(v);
    return '{\n' + ks.map((k) => pad + JSON.stringify(k) + ': ' + fmt(v[k], ind + 2)).join(',\n') +
      '\n' + ' '.repeat(ind) + '}';
  }
  return JSON.stringify(v);
}
process.stdout.write(fmt(doc, 0) + '\n');
// Sanity: the pretty form must parse back to exactly the same document.
if (JSON.stringify(JSON.parse(fmt(doc, 0))) !== JSON.stringify(doc)) throw new Error('pretty-print changed the document');
for (const img of doc.images) process.stderr.write(`${img.path}: ${img.faces.length} faces\n`);
process.stderr.write(`total: ${doc.images.reduce((n, i) => n + i.faces.length, 0)} faces\n`);
EOF

mkdir -p "$(dirname "$out")"
mv "$tmp.pretty" "$out"
echo "make-golden: wrote $out ($(stat -c %s "$out") bytes)" >&2
