#!/bin/bash
# e2e_live.sh BUILD SRCROOT RTSP_SERVER: the appliance as it runs at a site. vigild serve owns the
# live pipeline: an admin adds a camera (an RTSP server, gst-rtsp-server with Basic auth, playing
# make demo's recording of 22 people in real time); an operator registers the watchlist of two
# of them with vigild; a deployment is requested, authorised by another person and started, and
# vigild starts the capture itself (vigild run over net_af_packet on lo). It proves:
#   - the alerts are exactly the two watchlisted people's, recorded for review under the camera's
#     name, while nothing else alerts;
#   - a pipeline that dies is started again by vigild (audited), and the deployment's stop stops
#     it before its watchlist is purged from disk (invariant 2);
#   - vigild's /metrics shows the live pipeline's own counters (packets, frames, faces, queues);
#   - the camera's password is in no output, log, audit entry, report or command line.
set -uo pipefail
BUILD=$(realpath "$1") ROOT=$(realpath "$2") server=${3:-}
. "$ROOT/tests/mgmt/vigild/e2e_lib.sh"
e2e_need e2e_live setpriv sqlite3 curl
[ -x "$server" ] || { echo "e2e_live: no RTSP test server built (gst-rtsp-server)"; [ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1 || exit 77; }
srv=
e2e_tmp '[ -n "$srv" ] && kill $srv 2>/dev/null'
password=Pw-$RANDOM-live-$$
port=$((20000 + RANDOM % 20000))
ffmpeg -v error -y -framerate 10 -i "$rec/camera.h264" -c copy "$tmp/camera.mkv" || fail "mkv"

mkdir -p "$tmp/enrol"
ffmpeg -v error -y -i "$fetched/face-api-1.7.15/demo/sample1.jpg" -vf crop=372:456:745:307 "$tmp/enrol/subject-a.jpg"
ffmpeg -v error -y -i "$fetched/face-api-1.7.15/demo/sample5.jpg" -vf crop=316:472:1034:80 "$tmp/enrol/subject-b.jpg"
export VIGIL_SOCKET=$tmp/vigild.sock
cat >"$tmp/vigild.conf" <<CONF
vigild.state_dir = "$tmp/state"
vigild.socket = "$tmp/vigild.sock"
vigild.people = "0:root:admin+operator,2003:supt.carol:authoriser"
vigild.metrics_listen = "127.0.0.1:$((port + 1))"
vigild.capture_iface = "lo"
vigild.capture_rtsp_port = $((port + 10))
vigild.models = "$VIGIL_MODELS"
CONF
"$vigild" serve --config "$tmp/vigild.conf" 2>"$tmp/vigild.log" &
serve=$!
for _ in $(seq 600); do [ -S "$tmp/vigild.sock" ] && break; sleep 0.1; done
"$vigilctl" camera add gate-north --url "rtsp://officer:$password@127.0.0.1:$port/cam" --location "North gate" --fps 10 \
	>"$tmp/out" 2>&1 || fail "camera add: $(cat "$tmp/out")"
"$vigilctl" watchlist import --name "Sought persons" --id 1 --threshold 0.5 "$tmp/enrol" >>"$tmp/out" 2>&1 ||
	fail "watchlist import: $(tail -1 "$tmp/out")"
"$vigilctl" status >>"$tmp/out" 2>&1
grep -q "capture: not running: no active deployment" "$tmp/out" || fail "status before the deployment: $(grep capture "$tmp/out")"
"$vigilctl" deployment create --name live --use-case sought-persons --location "North gate" --start now --end +1h \
	--justification test --watchlist 1 >>"$tmp/out" 2>&1 || fail "deployment create"
setpriv --reuid=2003 --regid=2003 --clear-groups "$vigilctl" deployment authorise 1 --reasons ok >>"$tmp/out" 2>&1 ||
	fail "deployment authorise"
# The camera starts playing now; the deployment starts, and with it the capture.
"$server" $port basic officer "$password" "$tmp/camera.mkv" >/dev/null 2>&1 &
srv=$!
for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$vigilctl" deployment start 1 >>"$tmp/out" 2>&1 || fail "deployment start"
for _ in $(seq 300); do "$vigilctl" status 2>&1 | grep -q "capture: running" && break; sleep 0.2; done
"$vigilctl" status >>"$tmp/out" 2>&1
grep -q "capture: running for deployment 1" "$tmp/out" || fail "the capture did not start: $(grep capture "$tmp/out" | tail -1)"
pid=$(sqlite3 "$tmp/state/vigil.db" "SELECT json_extract(detail, '$.pid') FROM audit WHERE action = 'capture.start' ORDER BY seq DESC LIMIT 1")
[ -n "$pid" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$password" || fail "the password is on the capture's command line"

# vigild's /metrics: its own gauges and the pipeline's counters, from the child's process.
metric() { curl -s "http://127.0.0.1:$((port + 1))/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
for _ in $(seq 120); do [ "$(metric vigil_analysis_frames_analysed)" -gt 0 ] 2>/dev/null && break; sleep 0.5; done
[ "$(metric vigil_capture_running)" = 1 ] || fail "/metrics: vigil_capture_running is '$(metric vigil_capture_running)'"
[ "$(metric vigil_dp_rx_frames)" -gt 0 ] 2>/dev/null || fail "/metrics: no packets received (vigil_dp_rx_frames '$(metric vigil_dp_rx_frames)')"
[ "$(metric vigil_analysis_frames_analysed)" -gt 0 ] 2>/dev/null || fail "/metrics: no frames analysed"
[ -n "$(metric vigil_analysis_queued_frames)" ] || fail "/metrics: no analysis queue gauge"
echo "metrics: $(metric vigil_dp_rx_frames) packets, $(metric vigil_analysis_frames_analysed) frames analysed, $(metric vigil_analysis_frames_dropped) dropped, $(metric vigil_analysis_faces_scanned) faces"

# The recording plays for 20 s: wait for both people, at most 120 s (a busy machine starts slowly).
alerted() { sqlite3 "$tmp/state/vigil.db" "SELECT group_concat(subject) FROM (SELECT DISTINCT subject FROM alerts ORDER BY subject)"; }
for _ in $(seq 240); do [ "$(alerted)" = "subject-a,subject-b" ] && break; sleep 0.5; done
[ "$(alerted)" = "subject-a,subject-b" ] || fail "alerts for '$(alerted)', not exactly subject-a and subject-b"
[ "$(sqlite3 "$tmp/state/vigil.db" "SELECT COUNT(*) FROM alerts WHERE camera != 'gate-north'")" = 0 ] ||
	fail "alerts not named for the camera: $(sqlite3 "$tmp/state/vigil.db" "SELECT DISTINCT camera FROM alerts")"
"$vigilctl" alert list --unreviewed >>"$tmp/out" 2>&1 || fail "alert list"

# The pipeline dies (as a crash would): vigild starts it again within its 1 s back-off. Killed
# only once both people alerted: a restart costs seconds of a one-pass stream, and on a busy
# machine those seconds were the ones a person crossed in (the test then failed by load).
pid=$(sqlite3 "$tmp/state/vigil.db" "SELECT json_extract(detail, '$.pid') FROM audit WHERE action = 'capture.start' ORDER BY seq DESC LIMIT 1")
touch "$tmp/killed"
kill -9 "$pid" 2>/dev/null
for _ in $(seq 240); do
	[ "$(sqlite3 "$tmp/state/vigil.db" "SELECT COUNT(*) FROM audit WHERE action = 'capture.start'")" -ge 2 ] && break
	sleep 0.25
done
[ "$(sqlite3 "$tmp/state/vigil.db" "SELECT COUNT(*) FROM audit WHERE action = 'capture.start'")" -ge 2 ] ||
	fail "a dead capture was not started again"
sqlite3 "$tmp/state/vigil.db" "SELECT detail FROM audit WHERE action = 'capture.exit'" | grep -q '"signal":9' ||
	fail "the capture's death was not audited"
# The new capture is past its start-up once it writes its metrics (every 2 s from then on): only
# then does a stop find a run to end, with a report.
for _ in $(seq 600); do [ "$tmp/state/runs/metrics.prom" -nt "$tmp/killed" ] && break; sleep 0.1; done
[ "$tmp/state/runs/metrics.prom" -nt "$tmp/killed" ] || fail "the restarted capture never started running"


# The deployment's stop ends the capture first, then purges the watchlist's files.
wl=$(sqlite3 "$tmp/state/vigil.db" "SELECT path FROM watchlists WHERE id = '1'")
[ -f "$wl" ] || fail "the registered watchlist is not in vigild's custody"
"$vigilctl" deployment stop 1 --reason "end of the event" >>"$tmp/out" 2>&1 || fail "deployment stop"
[ ! -e "$wl" ] || fail "the watchlist file outlived its deployment"
order=$(sqlite3 "$tmp/state/vigil.db" "SELECT group_concat(action, ' ') FROM (SELECT action FROM audit
	WHERE action IN ('capture.stop', 'watchlist.purge', 'deployment.stop') ORDER BY seq)")
case "$order" in "capture.stop watchlist.purge"*) ;; *) fail "stop order: $order (capture.stop must come first)";; esac
"$vigilctl" status >>"$tmp/out" 2>&1
grep "capture:" "$tmp/out" | tail -1 | grep -q "not running" || fail "the capture outlived its deployment"
report=$(ls "$tmp/state/runs"/deployment-1-*.json 2>/dev/null | tail -1)
[ -s "$report" ] || fail "the stopped capture wrote no report"
[ -n "$report" ] && [ "$(e2e_json "$report" 'r.cameras[0].id')" = '"gate-north"' ] || fail "the report does not name the camera"
"$vigilctl" audit verify >>"$tmp/out" 2>&1 || fail "the audit chain is broken"
"$vigilctl" audit export --out "$tmp/audit.jsonl" >/dev/null 2>&1 || fail "audit export"

# The password: nowhere but the sealed credentials.
leak=$(grep -rl -a -- "$password" "$tmp/out" "$tmp/vigild.log" "$tmp/audit.jsonl" "$tmp/state" 2>/dev/null)
[ -z "$leak" ] || fail "the camera's password is in the clear in: $leak"
kill $srv 2>/dev/null
wait $srv 2>/dev/null
srv=
e2e_done "e2e_live: vigild ran the pipeline on a live RTSP camera for deployment 1: alerts $(alerted), a killed capture restarted, stopped before the purge"
