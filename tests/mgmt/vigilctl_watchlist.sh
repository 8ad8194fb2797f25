#!/bin/bash
# vigilctl_watchlist.sh VIGILD VIGILCTL SEED_ALERT FETCHED: watchlists, reviews and the public record
# as their users meet them, vigilctl run as different Unix users (setpriv: the kernel says who
# calls). A CSV import registers a watchlist with vigild, refusing each bad row with a one-line
# reason; a file made with --out is moved into vigild's custody by `watchlist add`; an auditor
# may list and show (subject ids, never descriptors) but not add; a watchlist an active
# deployment names cannot be removed; a review's outcome reaches the evidence store; `alert show
# --out` puts the evidence beside the enrolment crop (one JPEG, twice the width); the per-hour
# record adds up; stopping a deployment, or its window closing in vigild's loop, deletes the
# watchlist's files; the audit log verifies. Skips (77) without the face model in FETCHED.
set -uo pipefail
vigild=$(realpath "$1") vigilctl=$(realpath "$2") seed=$(realpath "$3") fetched=$4
models=$fetched/face-api-1.7.15/model demo=$fetched/face-api-1.7.15/demo
[ -d "$models" ] && [ -f "$demo/sample1.jpg" ] || { echo "no face model or demo photos in $fetched: skipped"; exit 77; }
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { echo "needs ffmpeg and ffprobe: skipped"; exit 77; }
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
	if "${@:3}" >"$tmp/out" 2>"$tmp/err"; then fail "$1: it succeeded";
	elif [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$2" "$tmp/err"; then fail "$1: stderr was: $(cat "$tmp/err")";
	else echo "ok   $1: $(cat "$tmp/err")"; fi
}
as() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }
width() { ffprobe -v error -select_streams v:0 -show_entries stream=width -of csv=p=0 "$1"; }

# Enrolment images: two people cut from the full-size photos, a group photo (three faces), a face
# too small to enrol, and a CSV naming them with one malformed row.
mkdir -p "$tmp/enrol" "$tmp/one" "$tmp/alice"
chown 2001:2001 "$tmp/alice"
ffmpeg -v error -y -i "$demo/sample1.jpg" -vf crop=372:456:745:307 "$tmp/enrol/subject-a.jpg"
ffmpeg -v error -y -i "$demo/sample5.jpg" -vf crop=316:472:1034:80 "$tmp/enrol/subject-b.jpg"
ffmpeg -v error -y -i "$demo/sample4.jpg" -vf crop=900:400:200:40 "$tmp/enrol/group.jpg"
ffmpeg -v error -y -i "$tmp/enrol/subject-a.jpg" -vf scale=110:-1 "$tmp/enrol/small.jpg"
cp "$tmp/enrol/subject-b.jpg" "$tmp/one/subject-b.jpg"
cat >"$tmp/list.csv" <<CSV
# subject_id,image_path
subject-a,enrol/subject-a.jpg
subject-b,enrol/subject-b.jpg
crowd,enrol/group.jpg
too-small,enrol/small.jpg
this row has no comma
CSV
chmod -R a+rX "$tmp/enrol" "$tmp/one" "$tmp/list.csv"

export VIGIL_SOCKET=$tmp/vigild.sock VIGIL_MODELS=$models
state=$tmp/state
cat >"$tmp/vigild.conf" <<CONF
vigild.state_dir = "$state"
vigild.socket = "$tmp/vigild.sock"
vigild.people = "2001:sgt.alice:operator,2003:supt.carol:authoriser,2004:auditor.dave:auditor,2005:admin.smith:admin"
vigild.metrics_listen = ""
vigild.log = "err"
CONF
"$vigild" serve --config "$tmp/vigild.conf" &
pid=$!
for _ in $(seq 600); do [ -S "$tmp/vigild.sock" ] && break; sleep 0.1; done

# 1. CSV import straight into vigild: the good rows enrolled, each bad one refused in one line.
if as 2001 "$vigilctl" watchlist import --name "Carnival sought persons" --id 7 --threshold 0.5 \
	--csv "$tmp/list.csv" >"$tmp/out" 2>"$tmp/err"; then fail "import with bad rows exited 0"; fi
[ "$(wc -l <"$tmp/err")" = 3 ] && grep -q "group.jpg: refused: 3 faces" "$tmp/err" &&
	grep -q "small.jpg: refused: too low quality" "$tmp/err" && grep -q "line 6: refused: expected subject_id,image_path" "$tmp/err" &&
	echo "ok   CSV import: one line per refused row: $(tr '\n' '|' <"$tmp/err")" || fail "CSV refusals: $(cat "$tmp/err")"
grep -q "^2 enrolled in watchlist 7 (threshold 0.50), 3 refused" "$tmp/out" && grep -q "^watchlist 7 registered: .*2 subjects, threshold 0.50, enrolment crops kept encrypted" "$tmp/out" ||
	fail "import output: $(cat "$tmp/out")"
[ -f "$state/watchlists/wl-7.vgw" ] && [ -f "$state/watchlists/wl-7.faces" ] && echo "ok   watchlist 7 in vigild's custody" ||
	fail "no custody files: $(ls -l "$state/watchlists")"

# 2. A file made with --out, then added: the auditor may not add it; alice's add moves it into custody.
check "import to a file" as 2001 "$vigilctl" watchlist import --out "$tmp/alice/wl8.vgw" --id 8 --threshold 0.55 "$tmp/one"
install -m 644 "$tmp/alice/wl8.vgw" "$tmp/wl8-copy.vgw" # one dave may read: the role is what refuses him
refuse "the auditor cannot add a watchlist" "may not watchlist.add" as 2004 "$vigilctl" watchlist add "$tmp/wl8-copy.vgw" --name "Spare"
refuse "a threshold other than the file's" "the file's threshold is 0.55" as 2001 "$vigilctl" watchlist add "$tmp/alice/wl8.vgw" --name "Spare" --threshold 0.6
check "alice adds it" as 2001 "$vigilctl" watchlist add "$tmp/alice/wl8.vgw" --name "Spare"
[ ! -e "$tmp/alice/wl8.vgw" ] && [ -f "$state/watchlists/wl-8.vgw" ] && echo "ok   add moved the file into custody" || fail "add left $tmp/alice/wl8.vgw"
refuse "the same id twice" "watchlist 7 exists already" as 2001 "$vigilctl" watchlist import --name again --id 7 "$tmp/one"
refuse "a file that is not a watchlist" "not a watchlist file" as 2001 "$vigilctl" watchlist add "$tmp/list.csv" --name bogus

# 3. Records: list and show as the auditor; subject ids, a seal that holds, never a descriptor.
refuse "the auditor cannot remove one" "may not watchlist.remove" as 2004 "$vigilctl" watchlist remove 8 --reason "mine"
refuse "remove needs a reason" "remove ID --reason R" as 2001 "$vigilctl" watchlist remove 8
check "dave lists watchlists" as 2004 "$vigilctl" watchlist list
grep -q "^7 .*live .*Carnival sought persons.*2 subjects  added by sgt.alice" "$tmp/out" && grep -q "^8 " "$tmp/out" ||
	fail "list: $(cat "$tmp/out")"
check "dave shows watchlist 7" as 2004 "$vigilctl" watchlist show 7 --json
grep -q '"seal_ok": true' "$tmp/out" && grep -q '"subject-a"' "$tmp/out" && grep -q '"subject-b"' "$tmp/out" &&
	! grep -qi descriptor "$tmp/out" || fail "show json: $(cat "$tmp/out")"
sha=$(sha256sum "$state/watchlists/wl-7.vgw" | cut -c1-64)
seal=$(tail -c 32 "$state/watchlists/wl-7.vgw" | od -An -tx1 | tr -d ' \n')
grep -q "\"sha256\": \"$seal\"" "$tmp/out" && echo "ok   the record holds the file's seal" || fail "seal $seal not in the record"
[ -n "$sha" ] || fail "no file"

# 4. A deployment names watchlist 7: it cannot be removed while the deployment runs.
check "alice requests" as 2001 "$vigilctl" deployment create --name "Carnival" --use-case sought-persons \
	--location "Ladbroke Grove" --start now --end +8h --justification "Sought persons expected" --watchlist 7
check "carol authorises" as 2003 "$vigilctl" deployment authorise 1 --reasons "Necessary and proportionate"
check "alice starts" as 2001 "$vigilctl" deployment start 1
refuse "remove while in use" "in use by deployment 1 (active)" as 2001 "$vigilctl" watchlist remove 7 --reason "tidy up"
refuse "purge while in use" "in use by deployment 1" as 2001 "$vigilctl" watchlist purge 7

# 5. An alert with evidence; reviewed; its outcome reaches the store; the reviewer's picture.
alert=$("$seed" "$state" 1 subject-a 7 "$tmp/enrol/subject-a.jpg") || fail "seed_alert"
check "alice confirms the alert" as 2001 "$vigilctl" alert review "$alert" --confirm --note "Same person as the enrolment photo"
applied=$(sqlite3 "$state/vigil.db" "SELECT store_outcome_applied FROM alerts WHERE id = $alert")
[ "$applied" = 1 ] && echo "ok   the review's outcome was applied to the evidence store" || fail "store outcome applied: '$applied'"
check "alert show --out" "$vigilctl" alert show "$alert" --out "$tmp/pair.jpg" --state-dir "$state"
check "alert evidence" "$vigilctl" alert evidence "$alert" --out "$tmp/evidence.jpg" --state-dir "$state"
djpeg "$tmp/pair.jpg" >/dev/null 2>&1 || fail "djpeg cannot read the side-by-side JPEG"
pw=$(width "$tmp/pair.jpg") ew=$(width "$tmp/evidence.jpg")
[ -n "$pw" ] && [ "$pw" = $((2 * ew)) ] && echo "ok   side by side: ${pw} px = 2 x ${ew} px evidence" || fail "widths: pair $pw evidence $ew"
refuse "alert show of an unknown alert" "no alert 999" "$vigilctl" alert show 999 --out "$tmp/x.jpg" --state-dir "$state"

# 6. The public record, hour by hour.
check "deployment show" as 2004 "$vigilctl" deployment show 1 --json
python3 - "$tmp/out" <<'PY' && echo "ok   per-hour figures add up to the totals" || fail "hours: $(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1])); t = d["transparency"]; h = d["hours"]
assert 8 <= len(h) <= 9, len(h)
for k in ("faces_scanned", "alerts", "confirmed", "rejected_false", "unreviewed"):
    assert sum(x[k] for x in h) == t[k], k
assert t["faces_scanned"] == 25 and t["confirmed"] == 1 and all(x["hour"] % 3600 == 0 for x in h)
PY
check "deployment show text" as 2004 "$vigilctl" deployment show 1
grep -q "faces 25, alerts 1: 1 confirmed" "$tmp/out" || fail "show text: $(cat "$tmp/out")"

# 7. Stop: the watchlist's descriptors are deleted and its record says purged; its enrolment crops
# (encrypted) stay while an alert needs them beside its evidence, so the reviewer, and later a
# court, still compare with the very crop the alert matched; then they go too.
check "alice stops" as 2001 "$vigilctl" deployment stop 1 --reason "Carnival over"
[ ! -e "$state/watchlists/wl-7.vgw" ] && [ -e "$state/watchlists/wl-7.faces" ] &&
	echo "ok   stop deleted watchlist 7's descriptors, kept its crops for the confirmed alert" ||
	fail "after stop: $(ls "$state/watchlists")"
check "show after stop" as 2004 "$vigilctl" watchlist show 7
grep -q "^7 .*purged" "$tmp/out" && grep -q "purged by vigild: its deployment ended" "$tmp/out" || fail "show after stop: $(cat "$tmp/out")"
refuse "remove a purged watchlist" "was purged already" as 2001 "$vigilctl" watchlist remove 7 --reason again
refuse "a new deployment cannot name a purged watchlist" "watchlist 7 was purged: import it again" as 2001 "$vigilctl" \
	deployment create --name "Again" --use-case sought-persons --location "Ladbroke Grove" --start now --end +1h \
	--justification "More" --watchlist "7@$(sqlite3 "$state/vigil.db" "SELECT sha256 FROM watchlists WHERE id = '7'")"
check "alert show after the purge: the same enrolment crop" "$vigilctl" alert show "$alert" --out "$tmp/pair2.jpg" --state-dir "$state"
cmp -s "$tmp/pair.jpg" "$tmp/pair2.jpg" && echo "ok   the reviewer's picture is unchanged by the purge" || fail "pair changed after the purge"
# The confirmed alert's evidence past its retention (its review dated long ago): vigild deletes the crops.
sqlite3 "$state/vigil.db" "UPDATE alerts SET reviewed_ns = 1 WHERE id = $alert"
for _ in $(seq 600); do [ -e "$state/watchlists/wl-7.faces" ] || break; sleep 0.1; done
[ ! -e "$state/watchlists/wl-7.faces" ] && echo "ok   crops deleted once no alert needs them" || fail "wl-7.faces kept"
refuse "alert show once the crops are gone" "the watchlist was purged" "$vigilctl" alert show "$alert" --out "$tmp/x.jpg" --state-dir "$state"

# 8. A window that closes: vigild's loop ends the deployment and purges watchlist 8.
now=$(date +%s)
check "a short deployment" as 2001 "$vigilctl" deployment create --name "Short" --use-case crime-hotspot \
	--location "High Street" --start now --end $((now + 3)) --justification "Brief" --watchlist 8
check "carol authorises it" as 2003 "$vigilctl" deployment authorise 2 --reasons "Brief and targeted"
check "alice starts it" as 2001 "$vigilctl" deployment start 2
for _ in $(seq 600); do [ -e "$state/watchlists/wl-8.vgw" ] || break; sleep 0.1; done
[ ! -e "$state/watchlists/wl-8.vgw" ] && echo "ok   the window's end purged watchlist 8" || fail "wl-8 still on disk"
check "show 8" as 2004 "$vigilctl" watchlist show 8 --json
grep -q '"state": "purged"' "$tmp/out" || fail "show 8: $(cat "$tmp/out")"
check "purge with nothing left" as 2005 "$vigilctl" watchlist purge
grep -q "no watchlist to purge" "$tmp/out" || fail "purge: $(cat "$tmp/out")"

# 9. Everything above is in the audit log, and the chain holds.
check "dave verifies the audit log" as 2004 "$vigilctl" audit verify
check "dave lists it" as 2004 "$vigilctl" audit list
for a in watchlist.add watchlist.remove.refused watchlist.purge deployment.expire alert.confirm evidence.export.compare; do
	grep -q " $a " "$tmp/out" || fail "no $a in the audit log"
done

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] || fail "vigild exit $rc"
[ "$fails" = 0 ] && echo "vigilctl_watchlist: all passed" || { echo "vigilctl_watchlist: $fails failed"; exit 1; }
