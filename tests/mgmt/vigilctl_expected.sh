#!/bin/bash
# vigilctl_expected.sh VIGILD VIGILCTL FETCHED: the false alerts a deployment should be expected to
# raise, as its requester and its authoriser meet them (issue 17). The model folder holds face-api's
# nets and a calibration.json bound to their digest (written here from made-up impostor scores, so
# the figure can be recomputed independently below). vigilctl model prints the identity and what the
# calibration supports; deployment create prints the expected false alerts per 1,000 faces, equal to
# 1000 (1 - (1 - FMR)^N) counted here from the raw scores; authorise shows it to the authoriser and
# the audit log carries it with the authorisation. Then the attacks: a limit under the figure
# refuses the request (and the refusal is audited); a calibration edited by hand, or made for another
# model, is not taken (nothing stated; under a limit, refused); a watchlist enrolled with another
# model is refused.
set -uo pipefail
vigild=$(realpath "$1") vigilctl=$(realpath "$2") fetched=$3
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$fetched/face-api-1.7.15/model/face_recognition_model.bin" ]; then
	echo "no fetched face model under $fetched (run tools/bootstrap)"
	[ "${VIGIL_REQUIRE_FETCHED:-}" = 1 ] && exit 1
	exit 77
fi
tmp=$(mktemp -d)
chmod 755 "$tmp"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...: the command must succeed
	if "${@:2}" >"$tmp/out" 2>"$tmp/err"; then echo "ok   $1"; else fail "$1: $(cat "$tmp/err" "$tmp/out" | head -3)"; fi
}
refuse() { # refuse DESCRIPTION PATTERN COMMAND...: must fail with one stderr line matching PATTERN
	if "${@:3}" >"$tmp/out" 2>"$tmp/err"; then fail "$1: it succeeded"
	elif [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$2" "$tmp/err"; then fail "$1: stderr was: $(cat "$tmp/err")"
	else echo "ok   $1: $(cat "$tmp/err")"; fi
}
as() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# The model folder: face-api's nets (links), and a calibration written for their digest.
models=$tmp/model
mkdir -p "$models"
for f in "$fetched"/face-api-1.7.15/model/{ssd_mobilenetv1,face_landmark_68,face_recognition}_model*; do
	ln -s "$f" "$models/"
done
check "model identifies the nets" "$vigilctl" model --models "$models" --json
digest=$(jget "$tmp/out" 'd["digest"]')
[ "$(jget "$tmp/out" 'd["id"]')" = face-api-1.7.15 ] && [ "${#digest}" = 64 ] || fail "model --json: $(cat "$tmp/out")"
check "model without a calibration says so" "$vigilctl" model --models "$models"
grep -q "no calibration: the false alerts it raises cannot be stated" "$tmp/out" || fail "no calibration: $(cat "$tmp/out")"
# 100,000 impostor pairs, scores 0.40 + i * 2e-6: the FMR at threshold t is the share below t.
python3 - "$models/calibration.json" "$digest" <<'PY'
import json, sys
scores = [0.40 + i * 2e-6 for i in range(100000)]
tail = [s for s in scores if s < 0.5]
json.dump({"format": "vigil-calibration/1", "model": {"id": "face-api-1.7.15", "digest": sys.argv[2], "metric": "l2"},
           "source": "made-up scores for the test", "impostor_pairs": len(scores), "impostor_people": 40,
           "tail_limit": 0.5, "tail": tail}, open(sys.argv[1], "w"))
PY
check "model reads its calibration" "$vigilctl" model --models "$models"
grep -q "calibration [0-9a-f]\{64\}: 100000 impostor pairs of 40 people" "$tmp/out" &&
	grep -q "at a watchlist of 16000: threshold .*NOT SUPPORTED" "$tmp/out" || fail "model text: $(cat "$tmp/out")"

start_vigild() { # start_vigild LIMIT
	[ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null; }
	rm -f "$tmp/vigild.sock"
	cat >"$tmp/vigild.conf" <<CONF
vigild.state_dir = "$tmp/state"
vigild.socket = "$tmp/vigild.sock"
vigild.people = "2001:sgt.alice:operator,2003:supt.carol:authoriser,2004:auditor.dave:auditor"
vigild.metrics_listen = ""
vigild.log = "err"
vigild.models = "$models"
vigild.max_expected_false_alerts = $1
CONF
	"$vigild" serve --config "$tmp/vigild.conf" &
	pid=$!
	for _ in $(seq 100); do [ -S "$tmp/vigild.sock" ] && return; sleep 0.1; done
	fail "vigild did not start"
}
export VIGIL_SOCKET=$tmp/vigild.sock
mkdir -p "$tmp/alice" && chown 2001:2001 "$tmp/alice"
add_list() { # add_list ID THRESHOLD SUBJECTS [MODEL]
	python3 "$here/make_watchlist.py" "$tmp/alice/wl$1.vgw" "$1" "$2" "$3" ${4:+"$4"} && chown 2001 "$tmp/alice/wl$1.vgw"
	as 2001 "$vigilctl" watchlist add "$tmp/alice/wl$1.vgw" --name "list $1" >/dev/null
}
request() { # request NAME WATCHLIST: a deployment request as alice
	as 2001 "$vigilctl" deployment create --name "$1" --use-case sought-persons --location "North stand" \
		--start now --end +4h --justification "Sought persons expected" --watchlist "$2" "${@:3}"
}

start_vigild 0
add_list 1 0.4001 50
check "alice requests a deployment" request "Match day" 1
grep -q "^expected false alerts: [0-9.e+-]* per 1,000 faces (95%: " "$tmp/out" || fail "create text: $(cat "$tmp/out")"
check "the same, for programs" as 2001 "$vigilctl" deployment show 1 --json
# Independently: the share of the made-up scores under the watchlist's threshold (as float32).
want=$(python3 -c '
import struct
t = struct.unpack("<f", struct.pack("<f", 0.4001))[0]
fmr = sum(1 for i in range(100000) if 0.40 + i * 2e-6 < t) / 100000
print(1000 * (1 - (1 - fmr) ** 50))')
python3 -c "
import json, sys
e = json.load(open('$tmp/out'))['expected_false_alerts']
ok = e['stated'] and abs(e['per_1000'] - $want) <= 1e-9 * $want and e['low'] < e['per_1000'] < e['high']
sys.exit(0 if ok else 1)" || fail "expected per 1,000 is not 1000 (1 - (1 - FMR)^N) = $want: $(cat "$tmp/out")"
check "carol authorises, shown the figure" as 2003 "$vigilctl" deployment authorise 1 --reasons "Proportionate"
grep -q "^expected false alerts: " "$tmp/out" || fail "authorise did not show the figure: $(cat "$tmp/out")"
check "the audit log" as 2004 "$vigilctl" audit list --json
python3 -c "
import json, sys
entries = json.load(open('$tmp/out'))['entries']
auth = [e for e in entries if e['action'] == 'deployment.authorise']
d = json.loads(auth[-1]['detail'])['expected_false_alerts']
sys.exit(0 if d['stated'] and abs(d['per_1000'] - $want) <= 1e-5 * $want and len(d['calibration']) == 64 else 1)" ||
	fail "the authorisation's audit entry lacks the figure: $(grep -o '"deployment.authorise".\{0,400\}' "$tmp/out")"

# The policy limit: under the interval's upper end, refused, on the record.
start_vigild 0.5
add_list 2 0.4001 50
refuse "a request over the policy's limit" "over the policy's limit" request "Match day 2" 2
check "the refusal is audited" as 2004 "$vigilctl" audit list --json
grep -q '"deployment.create.refused"' "$tmp/out" || fail "no deployment.create.refused entry"
start_vigild 1000
check "under a generous limit it passes" request "Match day 2" 2

# A calibration edited by hand (a score out of order) or made for another model is not taken.
cp "$models/calibration.json" "$tmp/calibration.good"
sed -i 's/"tail": \[0.4, /"tail": [0.45, /' "$models/calibration.json"
refuse "model refuses an edited calibration" "ascending" "$vigilctl" model --models "$models"
sed "s/$digest/$(printf '%064d' 0)/" "$tmp/calibration.good" >"$models/calibration.json"
refuse "model refuses another model's calibration" "calibrated for another model" "$vigilctl" model --models "$models"
start_vigild 0
add_list 3 0.4001 50
check "without a calibration the figure is not stated" request "Match day 3" 3
grep -q "expected false alerts: not stated" "$tmp/out" || fail "not stated: $(cat "$tmp/out")"
start_vigild 5
add_list 4 0.4001 50
refuse "under a limit, no calibration is refused" "no calibration" request "Match day 4" 4

# A watchlist enrolled with another model cannot be deployed on this one.
cp "$tmp/calibration.good" "$models/calibration.json"
start_vigild 0
add_list 5 0.4001 50 "face-api:0123456789abcdef"
refuse "another model's watchlist" "enrolled with model face-api:0123456789abcdef" request "Match day 5" 5

[ "$fails" = 0 ] && echo "all passed" || echo "$fails failed"
[ "$fails" = 0 ]
