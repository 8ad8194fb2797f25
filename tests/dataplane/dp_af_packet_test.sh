#!/bin/bash
# Integration: a live camera on a kernel interface, for machines without a DPDK NIC. vigild
# receives through DPDK's net_af_packet on lo while GStreamer (x264enc ! rtph264pay) streams to
# it; the decoded frames must equal ffmpeg's decode of the same elementary stream (tee'd to a
# file). On lo an AF_PACKET socket sees each packet twice (out and in): counted as duplicates.
# Usage: dp_af_packet_test.sh VIGILD. Exit 77 without GStreamer/ffmpeg/root, unless
# VIGIL_REQUIRE_FETCHED=1.
set -u
vigild=$(realpath "$1")
server=${2:+$(realpath "$2")}
skip() {
	echo "SKIP: $*"
	[ "${VIGIL_REQUIRE_FETCHED:-0}" = 1 ] && exit 1
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}
for p in ffmpeg gst-launch-1.0 python3; do
	command -v $p >/dev/null || skip "$p not installed (tools/bootstrap installs it)"
done
[ "$(id -u)" = 0 ] || skip "DPDK's EAL and AF_PACKET need root here"
t=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$t"' EXIT
cd "$t" || exit 1
P=$((24000 + ($$ % 4000) * 2))
printf 'v=0\no=- 0 0 IN IP4 127.0.0.1\ns=live\nt=0 0\nm=video %d RTP/AVP 96\na=rtpmap:96 H264/90000\n' $P >live.sdp
"$vigild" run --iface lo --seconds 5 --sdp live.sdp --report r.json --framemd5 live.md5 >vigild.log 2>&1 &
v=$!
sleep 1.5
kill -0 $v 2>/dev/null || { cat vigild.log; skip "vigild could not open lo with net_af_packet"; }
gst-launch-1.0 -q videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=25/1 ! \
	x264enc speed-preset=ultrafast key-int-max=10 bframes=0 ! video/x-h264,stream-format=byte-stream ! tee name=t ! \
	queue ! filesink location=live.h264 t. ! queue ! rtph264pay pt=96 config-interval=-1 mtu=1200 ! \
	udpsink host=127.0.0.1 port=$P sync=true || fail "GStreamer sender"
wait $v || { cat vigild.log; fail "vigild run --iface lo"; }
ffmpeg -v error -i live.h264 -f framemd5 ref.md5 || fail "ffmpeg framemd5"
cmp -s <(grep '^0,' live.md5 | awk -F', *' '{print $5, $6}') <(grep -v '^#' ref.md5 | awk -F', *' '{print $5, $6}') ||
	fail "frames received live differ from ffmpeg's decode of the stream"
python3 - <<'PY' || fail "live report"
import json
c = json.load(open('r.json'))['cameras'][0]
assert c['frames_decoded'] == 30 and c['rtp_lost'] == 0 and c['frames_corrupt'] == 0, c
print('live on lo via net_af_packet: %d frames, framemd5 equal to ffmpeg; %d packets (%d seen twice)'
      % (c['frames_decoded'], c['rtp_packets'], c['rtp_duplicates']))
PY

# A camera set up over RTSP (gst-rtsp-server with Basic auth): vigild runs DESCRIBE/SETUP/PLAY,
# keeps the session alive, receives the RTP on lo and TEARs DOWN at the end.
[ -n "$server" ] || { echo "PASS (no RTSP server built)"; exit 0; }
RP=$((P + 9000))
"$server" $RP basic officer s3cret-pw >/dev/null 2>&1 &
srv=$!
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$RP) 2>/dev/null && break; sleep 0.1; done
"$vigild" run --iface lo --seconds 4 --rtsp "rtsp://officer:s3cret-pw@127.0.0.1:$RP/cam" --rtsp-port $((P + 100)) \
	--report rr.json >rtsp.log 2>&1 || { cat rtsp.log; fail "vigild run --rtsp"; }
python3 - <<'PY' || fail "RTSP camera report"
import json
c = json.load(open('rr.json'))['cameras'][0]
assert c['codec'] == 'h264' and c['frames_decoded'] >= 10 and c['rtp_lost'] == 0 and c['rtcp_sr'] > 0, c
print('rtsp: %d frames from gst-rtsp-server, %d sender reports' % (c['frames_decoded'], c['rtcp_sr']))
PY
msg=$("$vigild" run --iface lo --seconds 2 --rtsp "rtsp://officer:wrong-pw@127.0.0.1:$RP/cam" --report x.json 2>&1)
rc=$?
[ $rc != 0 ] || fail "wrong RTSP credentials were accepted"
msg=$(echo "$msg" | grep -v SIOCSIFHWADDR) # DPDK's af_packet PMD line about lo's MAC
[ "$(echo "$msg" | wc -l)" = 1 ] || fail "error is not one line: $msg"
echo "$msg" | grep -q "credentials refused" || fail "wrong credentials: $msg"
case "$msg" in *wrong-pw* | *officer*) fail "the error shows the credentials: $msg" ;; esac
kill $srv
wait $srv 2>/dev/null

# The camera reboots mid-session: vigild sees the connection close, opens a new session on the
# same client ports with back-off, and frames keep coming (a new SSRC: one resync).
"$server" $RP none >/dev/null 2>&1 &
srv=$!
for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$RP) 2>/dev/null && break; sleep 0.1; done
"$vigild" run --iface lo --seconds 7 --rtsp "rtsp://127.0.0.1:$RP/cam" --rtsp-port $((P + 100)) --report rc.json \
	>rc.log 2>&1 &
v=$!
sleep 3
kill $srv
wait $srv 2>/dev/null
sleep 0.5
"$server" $RP none >/dev/null 2>&1 &
srv=$!
wait $v || { cat rc.log; fail "vigild run --rtsp across a camera restart"; }
kill $srv
python3 - <<'PY' || fail "RTSP reconnect"
import json
r = json.load(open('rc.json'))
c = r['cameras'][0]
assert r['stages']['rtsp'] == {'sessions': 1, 'reconnects': 1}, r['stages']
assert c['rtp_resyncs'] >= 1 and c['rtp_lost'] == 0 and c['frames_decoded'] >= 30, c
print('rtsp restart: reconnected once, %d frames, %d resync' % (c['frames_decoded'], c['rtp_resyncs']))
PY
echo PASS
