# e2e_lib.sh: what the end-to-end scripts share (sourced, never run). Each script sets BUILD and
# ROOT, then calls these:
#   e2e_need NAME CMD...     exit 77 (or 1 under make test) unless the fetched data and CMDs exist
#   e2e_tmp [CLEANUP]        a scratch folder $tmp, removed at exit (unless KEEP is set) after
#                            CLEANUP (shell text) and stopping vigild serve
#   e2e_deployment DIR       vigild serve on DIR, watchlist 1 (make demo's two people, threshold
#                            0.5) in its custody, and a deployment (1) naming it by seal, requested
#                            by root, authorised by uid 2003 and started; the recording is $rec
# and report failures with fail; e2e_done prints the summary line or exits 1.
fails=0
serve=
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

e2e_need() {
	local name=$1 c
	shift
	fetched=$ROOT/fetched
	export VIGIL_MODELS=$fetched/face-api-1.7.15/model
	for c in gst-launch-1.0 ffmpeg node "$@"; do
		if ! command -v "$c" >/dev/null || [ ! -d "$VIGIL_MODELS" ]; then
			echo "$name: missing fetched weights or $c: run tools/bootstrap"
			[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77
		fi
	done
	vigild=$BUILD/vigild vigilctl=$BUILD/vigilctl
	[ -x "$vigild" ] && [ -x "$vigilctl" ] || { echo "$name: vigild/vigilctl not built"; exit 77; }
	"$ROOT/tools/make-demo-recording" "$fetched/demo-recording" || { echo "$name: no recording"; exit 1; }
	rec=$fetched/demo-recording
}

e2e_tmp() {
	tmp=$(mktemp -d)
	chmod 755 "$tmp"   # vigilctl runs as other uids too, and reaches the socket in here
	trap "${1:+$1; }"'[ -n "$serve" ] && kill $serve 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
}

e2e_deployment() {
	local dir=$1
	export VIGIL_SOCKET=$dir/vigild.sock
	mkdir -p "$dir/enrol"
	ffmpeg -v error -y -i "$fetched/face-api-1.7.15/demo/sample1.jpg" -vf crop=372:456:745:307 "$dir/enrol/subject-a.jpg"
	ffmpeg -v error -y -i "$fetched/face-api-1.7.15/demo/sample5.jpg" -vf crop=316:472:1034:80 "$dir/enrol/subject-b.jpg"
	cat >"$dir/vigild.conf" <<CONF
vigild.state_dir = "$dir/state"
vigild.socket = "$dir/vigild.sock"
vigild.people = "0:root:admin+operator,2003:supt.carol:authoriser"
vigild.metrics_listen = ""
CONF
	"$vigild" serve --config "$dir/vigild.conf" 2>/dev/null &
	serve=$!
	# A condition, bounded generously: a busy machine may take seconds to start vigild.
	for _ in $(seq 600); do [ -S "$dir/vigild.sock" ] && break; sleep 0.1; done
	# The watchlist into vigild's custody first; the deployment names it (by seal), and every run
	# takes it from custody: no watchlist file lies outside.
	"$vigilctl" watchlist import --name e2e --id 1 --threshold 0.5 "$dir/enrol" >/dev/null 2>&1 || fail "watchlist import"
	"$vigilctl" deployment create --name e2e --use-case sought-persons --location lab --start now --end +1h \
		--justification test --watchlist 1 >/dev/null 2>&1 || fail "deployment create"
	setpriv --reuid=2003 --regid=2003 --clear-groups "$vigilctl" deployment authorise 1 --reasons ok >/dev/null ||
		fail "deployment authorise"
	"$vigilctl" deployment start 1 >/dev/null || fail "deployment start"
}

# A field of report.json: e2e_json FILE 'EXPRESSION over r' (node).
e2e_json() {
	node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
		 console.log(JSON.stringify(eval(process.argv[2])));' "$1" "$2"
}

e2e_done() {
	[ -n "$serve" ] && kill "$serve" 2>/dev/null && wait "$serve" 2>/dev/null
	[ "$fails" = 0 ] && echo "$1" || exit 1
}
