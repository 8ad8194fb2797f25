#!/bin/bash
# vigilctl_conventions: the conventions every verb keeps (issue 16), as a user sees them.
#   --json, --socket, --timeout and --version anywhere on the line; vigilctl and vigild --version;
#   exit 2 with one line pointing at `vigilctl VERB --help` for usage errors, 1 for refusals;
#   FIFOs given as an image, a CSV, a watchlist or an --out target refused at once (under
#   `timeout 10`, never 124); --out never overwrites; thresholds out of range refused with the
#   range, by vigilctl and by vigild; with the face model: a CSV header row, a subject twice.
# Usage: vigilctl_conventions.sh VIGILD VIGILCTL FETCHED_DIR
set -uo pipefail
vigild=$(realpath "$1") vigilctl=$(realpath "$2") fetched=$3
models=$fetched/face-api-1.7.15/model demo=$fetched/face-api-1.7.15/demo
tmp=$(mktemp -d)
chmod 755 "$tmp"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# run COMMAND...: COMMAND under `timeout 10`, with "as UID" turned into setpriv (timeout runs programs).
run() {
	local cmd=("$@")
	[ "${cmd[0]}" = as ] && cmd=(setpriv --reuid="${cmd[1]}" --regid="${cmd[1]}" --clear-groups "${cmd[@]:2}")
	timeout 10 "${cmd[@]}"
}
# exits WANT PATTERN DESCRIPTION COMMAND...: exit status WANT, one stderr line matching PATTERN,
# and never the 124 of `timeout 10` (a wait on a FIFO or a pipe would be that).
exits() {
	run "${@:4}" >"$tmp/out" 2>"$tmp/err"; local rc=$?
	if [ "$rc" != "$1" ]; then fail "$3: exit $rc, not $1: $(head -2 "$tmp/err")"
	elif [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$2" "$tmp/err"; then fail "$3: stderr was: $(cat "$tmp/err")"
	else echo "ok   $3 (exit $1): $(cat "$tmp/err")"; fi
}
ok() { # ok DESCRIPTION COMMAND...: exit 0
	if run "${@:2}" >"$tmp/out" 2>"$tmp/err"; then echo "ok   $1"; else fail "$1: $(head -2 "$tmp/err")"; fi
}

# 1. --version, from the meson project version, wherever it stands.
for args in "--version" "deployment --version" "watchlist import --version" "--json --version"; do
	# shellcheck disable=SC2086
	ok "vigilctl $args" "$vigilctl" $args
	grep -qx "vigilctl [0-9][0-9.]*" "$tmp/out" || fail "vigilctl $args printed: $(cat "$tmp/out")"
done
ok "vigild --version" "$vigild" --version
grep -qx "vigild [0-9][0-9.]*" "$tmp/out" || fail "vigild --version printed: $(cat "$tmp/out")"
ok "vigilctl deployment list --help still the verb's help" "$vigilctl" deployment list --help
grep -q "^usage: vigilctl deployment " "$tmp/out" || fail "deployment list --help: $(head -1 "$tmp/out")"

cat >"$tmp/vigild.conf" <<CONF
vigild.state_dir = "$tmp/state"
vigild.socket = "$tmp/vigild.sock"
vigild.people = "2001:sgt.alice:operator,2003:supt.carol:authoriser,2005:admin.smith:admin"
vigild.metrics_listen = ""
vigild.log = "err"
CONF
"$vigild" serve --config "$tmp/vigild.conf" &
pid=$!
for _ in $(seq 50); do [ -S "$tmp/vigild.sock" ] && break; sleep 0.1; done
S=$tmp/vigild.sock
unset VIGIL_SOCKET VIGIL_TIMEOUT

# 2. The global options before the verb, between verb and sub-command, after everything.
for line in "--json --socket $S deployment list" "deployment --socket $S list --json" \
	"--socket=$S deployment list --timeout 5 --json" "--timeout=5 watchlist --json list --socket $S" \
	"camera list --socket $S --json" "--json --socket $S retention"; do
	# shellcheck disable=SC2086
	ok "vigilctl $line" as 2005 "$vigilctl" $line
	python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/out" || fail "vigilctl $line: not JSON: $(head -c 200 "$tmp/out")"
done
exits 2 "--timeout 'soon' is not a number of seconds" "--timeout soon anywhere" "$vigilctl" deployment list --timeout soon
exits 2 "--socket needs a value" "--socket without a value" "$vigilctl" deployment list --socket

# 3. Per verb: a usage error exits 2 pointing at VERB --help; a refusal exits 1.
export VIGIL_SOCKET=$S
exits 2 "deployment: unknown option '--bogus' (vigilctl deployment --help)" "deployment usage" as 2001 "$vigilctl" deployment list --bogus
exits 1 "deployment.show" "deployment refusal" as 2001 "$vigilctl" deployment show 999
exits 2 "watchlist: show ID (vigilctl watchlist --help)" "watchlist usage" as 2001 "$vigilctl" watchlist show
exits 1 "watchlist.show" "watchlist refusal" as 2001 "$vigilctl" watchlist show 999
exits 2 "alert: 'x' is not an alert id (vigilctl alert --help)" "alert usage" as 2001 "$vigilctl" alert show x
exits 1 "alert.show" "alert refusal" as 2001 "$vigilctl" alert show 999
exits 2 "audit: list|verify|export (vigilctl audit --help)" "audit usage" as 2001 "$vigilctl" audit
exits 1 "nonexistent: No such file or directory" "audit refusal" as 2001 "$vigilctl" audit verify --export "$tmp/nonexistent"
exits 2 "camera: --fps must be a whole number from 1 to 60 (vigilctl camera --help)" "camera usage" as 2005 "$vigilctl" camera add c1 --url rtsp://h/p --fps 99
exits 1 "camera.remove" "camera refusal" as 2001 "$vigilctl" camera remove nosuch
exits 2 "config: set: needs KEY VALUE (vigilctl config --help)" "config usage" as 2005 "$vigilctl" config set x
exits 1 "config.set" "config refusal" as 2005 "$vigilctl" config set no.such.key 1
exits 2 "retention: 'ten' is not a number of days" "retention usage" as 2005 "$vigilctl" retention set --confirmed ten
exits 1 "retention.set" "retention refusal" as 2001 "$vigilctl" retention set --confirmed 10
exits 2 "status: unknown option '--all' (vigilctl status --help)" "status usage" as 2001 "$vigilctl" status --all
exits 1 "cannot reach vigild" "status refusal: vigild not there" "$vigilctl" status --socket "$tmp/nosuch.sock"
exits 2 "faces: no image given (vigilctl faces --help)" "faces usage" "$vigilctl" faces --tiny

# 4. FIFOs and devices refused at once; an --out file is never overwritten.
mkfifo "$tmp/fifo.csv" "$tmp/fifo.vgw" "$tmp/fifo.jpg" "$tmp/fifo.jsonl" "$tmp/fifo.url"
printf 'a,nothing.jpg\n' >"$tmp/empty.csv"
: >"$tmp/exists.vgw"
exits 1 "fifo.csv: not a regular file" "a FIFO as the CSV" "$vigilctl" watchlist import --out "$tmp/new.vgw" --csv "$tmp/fifo.csv"
exits 1 "fifo.vgw: not a regular file" "a FIFO as --out" "$vigilctl" watchlist import --out "$tmp/fifo.vgw" --csv "$tmp/empty.csv"
exits 1 "/dev/null: not a regular file" "a device as --out" "$vigilctl" audit export --out /dev/null
exits 1 "exists.vgw: the file exists; vigilctl never overwrites" "an existing --out" "$vigilctl" watchlist import --out "$tmp/exists.vgw" --csv "$tmp/empty.csv"
[ -f "$tmp/new.vgw" ] && fail "a refused import left its --out file behind"
exits 1 "fifo.vgw: not a regular file" "a FIFO as the watchlist to add" as 0 "$vigilctl" watchlist add "$tmp/fifo.vgw" --name X
exits 1 "fifo.jsonl: not a regular file" "a FIFO as the export to verify" "$vigilctl" audit verify --export "$tmp/fifo.jsonl"
# A pipe with a writer that never writes: held open read-write, so no open blocks the shell.
exec 3<>"$tmp/fifo.url"
exits 2 "no URL on standard input within 1 s" "--url - from a silent pipe" as 2005 "$vigilctl" camera add c2 --url - --timeout 1 <&3
exec 3>&-

# 5. Thresholds by metric: vigilctl says the range; vigild refuses such a file too.
exits 2 "outside (0, 2\], the range of an L2 distance" "import --threshold 3" "$vigilctl" watchlist import --out "$tmp/t.vgw" --threshold 3 --csv "$tmp/empty.csv"
exits 2 "outside (0, 2\], the range of an L2 distance" "add --threshold 0" "$vigilctl" watchlist add "$tmp/exists.vgw" --name X --threshold 0
python3 - "$tmp/wide.vgw" <<'PY'
import hashlib, struct, sys
# match.h's file: one watchlist (id 41, threshold 2.5, L2), one entry of d = 16.
head = b"VGWLIST\0" + struct.pack("<II", 1, 64) + b"face-api-1.7.15".ljust(32, b"\0") + struct.pack("<IIII", 16, 0, 1, 1)
body = head + struct.pack("<If", 41, 2.5) + b"s1".ljust(64, b"\0") + struct.pack("<I", 41) + struct.pack("<16f", *([0.25] * 16))
open(sys.argv[1], "wb").write(body + hashlib.sha256(body).digest())
PY
chmod 644 "$tmp/wide.vgw"
exits 1 "threshold 2.5 is outside (0, 2\], the range of an L2 distance" "vigild refuses a threshold of 2.5" as 2001 "$vigilctl" watchlist add "$tmp/wide.vgw" --name Wide

# 6. With the face model: a CSV header row; one subject twice; a FIFO as an image.
if [ -d "$models" ] && [ -f "$demo/sample1.jpg" ] && command -v ffmpeg >/dev/null; then
	export VIGIL_MODELS=$models
	mkdir -p "$tmp/enrol"
	ffmpeg -v error -y -i "$demo/sample1.jpg" -vf crop=372:456:745:307 "$tmp/enrol/subject-a.jpg"
	ffmpeg -v error -y -i "$demo/sample5.jpg" -vf crop=316:472:1034:80 "$tmp/enrol/subject-b.jpg"
	printf 'subject,image\nsubject-a,enrol/subject-a.jpg\nsubject-b,enrol/subject-b.jpg\n' >"$tmp/header.csv"
	ok "a CSV with a header row" "$vigilctl" watchlist import --out "$tmp/h.vgw" --csv "$tmp/header.csv"
	grep -q "^2 enrolled in watchlist 1 .*, 0 refused" "$tmp/out" || fail "header CSV: $(cat "$tmp/out" "$tmp/err")"
	printf 'id,path\nsubject-a,enrol/subject-a.jpg\nsubject-b,enrol/subject-b.jpg\nsubject-a,enrol/subject-b.jpg\n' >"$tmp/twice.csv"
	exits 1 "subject 'subject-a' appears twice: line 2 (.*subject-a.jpg) and line 4 (.*subject-b.jpg)" \
		"a subject twice in a CSV" "$vigilctl" watchlist import --out "$tmp/d.vgw" --csv "$tmp/twice.csv"
	mkdir "$tmp/dir2" && cp "$tmp/enrol/subject-a.jpg" "$tmp/dir2/x.jpg" && cp "$tmp/enrol/subject-b.jpg" "$tmp/dir2/x.jpeg"
	exits 1 "subject 'x' appears twice: .*x.jpeg and .*x.jpg" "a subject twice in a folder" "$vigilctl" watchlist import --out "$tmp/d.vgw" "$tmp/dir2"
	exits 1 "fifo.jpg: not a regular file" "a FIFO as an image" "$vigilctl" faces "$tmp/fifo.jpg"
	exits 2 "VIGIL_MODELS\|No such file" "--models overrides \$VIGIL_MODELS" "$vigilctl" faces --models "$tmp/enrol" "$tmp/enrol/subject-a.jpg"
else
	echo "skip no face model in $fetched: CSV header, duplicate subject and FIFO image not checked"
fi

kill -TERM "$pid"; wait "$pid"; pid=
[ "$fails" = 0 ] && echo "vigilctl_conventions: all passed" || { echo "vigilctl_conventions: $fails failed"; exit 1; }
