#!/bin/bash
# vigilctl_admin.sh VIGILD VIGILCTL [RTSP_SERVER]: the admin's verbs as users meet them. vigild
# serve runs with a people map and vigilctl runs as other Unix users (setpriv: the kernel, not the
# test, says who calls). Cameras are added, listed, probed and removed; config set and retention
# set change vigild and survive its restart; the audit log is exported and checked offline with
# an independent BLAKE2b (Python's hashlib). Each verb refuses the roles it is not for, and the
# refusal is audited. A camera's password (with '@', ':', '/', '%', a space and unicode, written
# percent-encoded) never shows: every output, vigild's log, the export, a dump of the database and
# its raw files are searched for it, whole and (in text) in 4-byte pieces. With RTSP_SERVER (gst-rtsp-server,
# tests/dataplane/rtsp_server.c), camera probe reads a live H.264 160x120 stream behind Basic auth.
set -uo pipefail
vigild=$(realpath "$1") vigilctl=$(realpath "$2") rtsp_server=${3:+$(realpath "$3")}
tmp=$(mktemp -d)
chmod 755 "$tmp"
pid= rtsp_pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ -n "$rtsp_pid" ] && kill "$rtsp_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# Everything vigilctl prints, on either stream, is kept in $tmp/all for the credential search.
run() { "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; cat "$tmp/out" "$tmp/err" >>"$tmp/all"; return $rc; }
check() { # check DESCRIPTION COMMAND...: the command must succeed
	if run "${@:2}"; then echo "ok   $1"; else fail "$1: $(cat "$tmp/err" "$tmp/out" | head -3)"; fi
}
refuse() { # refuse DESCRIPTION PATTERN COMMAND...: must fail with one stderr line matching PATTERN
	if run "${@:3}"; then fail "$1: it succeeded";
	elif [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$2" "$tmp/err"; then fail "$1: stderr was: $(cat "$tmp/err")";
	else echo "ok   $1: $(cat "$tmp/err")"; fi
}
expect() { # expect DESCRIPTION PATTERN: the last command's stdout must match PATTERN
	grep -q -- "$2" "$tmp/out" || fail "$1: output was: $(head -5 "$tmp/out")"
}
as() { local uid=$1; shift; setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"; }
admin() { as 1001 "$vigilctl" "$@"; }
alice() { as 2001 "$vigilctl" "$@"; }   # operator
carol() { as 2003 "$vigilctl" "$@"; }   # authoriser
dave() { as 2004 "$vigilctl" "$@"; }    # auditor

export VIGIL_SOCKET=$tmp/vigild.sock
cat >"$tmp/vigild.conf" <<CONF
vigild.state_dir = "$tmp/state"
vigild.socket = "$tmp/vigild.sock"
vigild.people = "1001:admin.smith:admin,2001:sgt.alice:operator,2003:supt.carol:authoriser,2004:auditor.dave:auditor"
vigild.metrics_listen = ""
vigild.log = "err"
CONF
start_vigild() {
	rm -f "$tmp/vigild.sock"
	"$vigild" serve --config "$tmp/vigild.conf" 2>>"$tmp/vigild.log" &
	pid=$!
	for _ in $(seq 50); do [ -S "$tmp/vigild.sock" ] && break; sleep 0.1; done
	[ -S "$tmp/vigild.sock" ] || { echo "FAIL vigild did not start: $(cat "$tmp/vigild.log")"; exit 1; }
}
stop_vigild() { kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=; [ "$rc" = 0 ] || fail "vigild exit $rc"; }
start_vigild

# A password with '@', ':', '/', '%', a space and unicode: PW is what the camera checks, PWE how
# the admin writes it in the URL (RFC 3986 userinfo, percent-encoded).
CUSER=camuser-q7 PW='S3c@ret:Pw/7% x€Zq' PWE='S3c%40ret:Pw%2F7%25%20x%E2%82%ACZq' port=$((20000 + RANDOM % 20000))
url="rtsp://$CUSER:$PWE@127.0.0.1:$port/cam"

# ---- cameras ----
refuse "operator cannot add a camera" "may not camera.add" alice camera add cam1 --url "$url"
check "admin adds a camera with credentials" admin camera add cam1 --url "$url" --location "Gate 4" --fps 8
expect "add shows the URL without credentials" "rtsp://127.0.0.1:$port/cam  (credentials sealed)  at Gate 4"
echo "rtsp://$CUSER:wrong-$PWE@127.0.0.1:$port/cam" >"$tmp/url2"
check "admin adds one with the URL on stdin" admin camera add cam2 --url - <"$tmp/url2"
check "admin adds one without credentials" admin camera add cam3 --url "rtsp://127.0.0.1:$port/cam"
refuse "a second cam1" "exists already" admin camera add cam1 --url "$url"
refuse "fps out of range" "fps must be" admin camera add cam9 --url "$url" --fps 0
refuse "not an RTSP URL" "must be rtsp://" admin camera add cam9 --url "http://$CUSER:$PWE@127.0.0.1/cam"
refuse "no host" "must be rtsp://" admin camera add cam9 --url "rtsp://$CUSER:$PWE@/cam"
refuse "two '@' before the host" "written %40" admin camera add cam9 --url "rtsp://$CUSER:S3c@ret@127.0.0.1:$port/cam"
refuse "a raw '@', '/' in the password" "must be percent-encoded" admin camera add cam9 --url "rtsp://$CUSER:$PW@127.0.0.1:$port/cam"
refuse "a raw '/' in the password" "after its host" admin camera add cam9 --url "rtsp://$CUSER:S3c%40ret:Pw/7@127.0.0.1:$port/cam"
refuse "credentials in the query string" "holds a credential" admin camera add cam9 --url "rtsp://127.0.0.1:$port/cam?user=$CUSER&password=$PWE"
refuse "bad id" "camera id is" admin camera add "cam 9" --url "$url"
check "operator lists cameras" alice camera list
expect "list, defaulted fps" "^cam3 .* 10 fps  rtsp://127.0.0.1:$port/cam$"
expect "list, credentials sealed" "^cam1 .*  8 fps  rtsp://127.0.0.1:$port/cam  (credentials sealed)"
check "auditor lists cameras as JSON" dave camera list --json
expect "json list" '"url": "rtsp://127.0.0.1:'"$port"'/cam"'
refuse "operator cannot probe" "may not camera.probe" alice camera probe cam1
refuse "probe an unknown camera" "no camera 'nosuch'" admin camera probe nosuch
if [ -n "$rtsp_server" ]; then
	"$rtsp_server" "$port" basic "$CUSER" "$PW" >/dev/null 2>"$tmp/rtsp.log" &
	rtsp_pid=$!
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
	check "admin probes cam1" admin camera probe cam1 --seconds 2
	expect "probe: codec and resolution" "^cam1: h264, 160x120, "
	echo "     $(cat "$tmp/out")"
	check "probe as JSON" admin camera probe cam1 --json
	python3 - "$tmp/out" <<'PY' || fail "probe json: $(cat "$tmp/out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["codec"] == "h264" and r["width"] == 160 and r["height"] == 120, r
assert 8 <= r["fps"] <= 12 and r["packets"] > 0 and r["frames"] > 0 and r["lost"] == 0, r
PY
	refuse "probe with a wrong password" "cam2" admin camera probe cam2
	refuse "probe without credentials" "cam3" admin camera probe cam3
else
	echo "skip camera probe: no rtsp_server (gst-rtsp-server) in this build"
fi
refuse "operator cannot remove a camera" "may not camera.remove" alice camera remove cam3
check "admin removes cam3" admin camera remove cam3
refuse "cam3 is gone" "no camera 'cam3'" admin camera remove cam3

# ---- config ----
check "auditor reads the settings" dave config get
expect "settings list" "^vigild.socket .*restart"
refuse "operator cannot read settings" "may not config.get" alice config get
refuse "operator cannot set" "may not config.set" alice config set vigild.log warning
refuse "authoriser cannot set" "may not config.set" carol config set vigild.log warning
check "admin sets vigild.log" admin config set vigild.log warn,mgmt=err
expect "set says old and new" 'vigild.log = "warn,mgmt=err" (was "err"); kept across restarts'
refuse "a bad log level" "not a level spec" admin config set vigild.log loud
refuse "a restart-only setting" "read at start-up only" admin config set vigild.socket /tmp/x.sock
refuse "an unknown setting" "unknown setting 'vigild.colour'" admin config set vigild.colour blue
refuse "set without a value" "needs KEY VALUE" admin config set vigild.log
refuse "a people map that drops the admin" "take the admin role" admin config set vigild.people "2001:sgt.alice:operator"
refuse "a malformed people map" "vigilctl: config.set:" admin config set vigild.people "nonsense"
check "admin adds a person" admin config set vigild.people \
	"1001:admin.smith:admin,2001:sgt.alice:operator,2003:supt.carol:authoriser,2004:auditor.dave:auditor,2005:pc.erin:operator"
check "the new person is known at once" as 2005 "$vigilctl" status
expect "erin" "you are pc.erin"

# ---- retention ----
check "operator reads retention" alice retention
expect "defaults" "confirmed 31 days, rejected (false alerts) 1 days, unreviewed 1 days"
refuse "operator cannot set retention" "may not retention.set" alice retention set --confirmed 90
check "admin sets retention" admin retention set --confirmed 90 --rejected 0 --unreviewed 2
expect "retention set" "confirmed 90 days, rejected (false alerts) 0 days, unreviewed 2 days"
refuse "unreviewed evidence kept at least a day" "at least 1 day" admin retention set --unreviewed 0
refuse "not a number of days" "not a number of days" admin retention set --confirmed lots
check "only one changed" admin retention set --rejected 1 --json
expect "others kept" '"confirmed_days": 90'

# ---- a reload, then a restart, keep it all ----
kill -HUP "$pid"
sleep 0.3
check "after SIGHUP: the stored setting outranks the file" dave config get vigild.log
expect "vigild.log still set" '^vigild.log  *set  *"warn,mgmt=err"$'
stop_vigild
start_vigild
check "after restart: the setting" dave config get vigild.log
expect "vigild.log kept" '^vigild.log  *set  *"warn,mgmt=err"$'
check "after restart: the person added" as 2005 "$vigilctl" status
check "after restart: retention" dave retention show --json
expect "retention kept" '"confirmed_days": 90'
check "after restart: cameras" dave camera list
expect "cam1 kept" "^cam1 "

# ---- audit export ----
refuse "operator cannot export the audit log" "may not audit.export" alice audit export
check "auditor exports to stdout" dave audit export
cp "$tmp/out" "$tmp/export-stdout.jsonl"
mkdir -m 1777 "$tmp/exports"
check "authoriser exports to a file" carol audit export --out "$tmp/exports/export.jsonl"
mv "$tmp/exports/export.jsonl" "$tmp/export.jsonl"
expect "summary" "^exported [0-9]* audit entries to $tmp/exports/export.jsonl; the last, [0-9]*, hashes to [0-9a-f]\{64\}$"
[ "$(stat -c %a "$tmp/export.jsonl")" = 600 ] || fail "export file mode $(stat -c %a "$tmp/export.jsonl")"
python3 - "$tmp/export.jsonl" "$tmp/state/vigil.db-audit-head" <<'PY' && echo "ok   the export verifies offline" || fail "offline verify"
import hashlib, json, sys
# The recipe of vigilctl(1) AUDIT EXPORT, independently of vigild's code.
def u64(v): return (v % 2**64).to_bytes(8, "little")
def text(s): return u64(2**64 - 1) if s is None else u64(len(s.encode())) + s.encode()
prev, hashes, actions = bytes(32), {}, []
lines = open(sys.argv[1]).read().splitlines()
assert json.loads(lines.pop())["head"]["signature"], "no signed head"  # checked by vigilctl_cli.sh
for n, line in enumerate(lines, 1):
    e = json.loads(line)
    assert e["seq"] == n, f"entry {n} missing"
    assert bytes.fromhex(e["prev_hash"]) == prev, f"entry {n} does not follow"
    h = hashlib.blake2b(prev + u64(e["seq"]) + u64(e["ts_ns"]) + text(e["actor"]) + u64(e["uid"]) + text(e["action"])
                        + text(e["object"]) + text(e["detail"]), digest_size=32).digest()
    assert h.hex() == e["hash"], f"entry {n} altered"
    prev, hashes[n] = h, e["hash"]
    actions.append((e["actor"], e["action"], e["object"]))
seq, head = open(sys.argv[2]).read().split()[:2]  # then: ed25519 KEY SIGNATURE
assert hashes[int(seq)] == head, "the anchored head differs"
assert actions[-1] == ("supt.carol", "audit.export", "audit"), actions[-1]
for want in [("sgt.alice", "request.refused", "verb/camera.add"), ("admin.smith", "camera.add", "camera/cam1"),
             ("admin.smith", "camera.remove", "camera/cam3"), ("admin.smith", "config.set", "setting/vigild.log"),
             ("admin.smith", "retention.set", "retention"), ("admin.smith", "camera.probe", "camera/cam1"),
             ("auditor.dave", "audit.export", "audit"), ("sgt.alice", "request.refused", "verb/audit.export")]:
    if want[1] == "camera.probe" and not any(a[1] == "camera.probe" for a in actions):
        continue  # no RTSP server in this build
    assert want in actions, f"{want} not audited"
PY
python3 - "$tmp/export.jsonl" <<'PY' || fail "config.set's audit entry lacks old and new"
import json, sys
sets = [json.loads(e["detail"]) for e in map(json.loads, open(sys.argv[1])) if e.get("object") == "setting/vigild.log"]
assert sets == [{"name": "vigild.log", "old": '"err"', "new": '"warn,mgmt=err"'}], sets
PY
check "audit verify still passes" dave audit verify
expect "intact" "audit log intact"

# ---- the password, anywhere ----
stop_vigild
sqlite3 "$tmp/state/vigil.db" .dump >"$tmp/dump.sql"
for f in "$tmp/all" "$tmp/vigild.log" "$tmp/export.jsonl" "$tmp/export-stdout.jsonl" "$tmp/dump.sql" "$tmp"/state/vigil.db*; do
	if grep -a -q -F -e "$PW" -e "$PWE" -e "$CUSER" "$f"; then fail "credentials found in $f"; fi
done
# Nor any 4-byte piece of the password, in either form, in what is text (the database's raw
# bytes hold random sealed blobs and hashes: searched above for the whole forms only; its dump
# writes blobs in hex).
python3 - "$PW" "$PWE" "$tmp/all" "$tmp/vigild.log" "$tmp/export.jsonl" "$tmp/export-stdout.jsonl" "$tmp/dump.sql" <<'PY' ||
import sys
pw, pwe, files = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3:]
for f in files:
    data = open(f, "rb").read()
    for form in (pw, pwe):
        for i in range(len(form) - 3):
            assert form[i:i + 4] not in data, f"{form[i:i + 4]!r} of the password in {f}"
PY
	fail "a piece of the password shows"
grep -q "CREATE TABLE cameras" "$tmp/dump.sql" && grep -q "rtsp://127.0.0.1:$port/cam" "$tmp/dump.sql" ||
	fail "the dump lacks the cameras"
[ "$(stat -c %a "$tmp/state/vigil.db-credentials.key")" = 600 ] || fail "credentials key mode"
echo "ok   no credentials in any output, log, export, dump or database file"
[ "$fails" = 0 ] && echo "vigilctl_admin: all passed" || { echo "vigilctl_admin: $fails failed"; exit 1; }
