#!/bin/bash
# Integration: a live camera on a kernel interface, for machines without a DPDK NIC. vigild
# receives through DPDK's net_af_packet on lo while GStreamer (x264enc ! rtph264pay) streams to
# it; the decoded frames must equal ffmpeg's decode of the same elementary stream (tee'd to a
# file). On lo an AF_PACKET socket sees each packet twice (out and in): counted as duplicates.
# Usage: dp_af_packet_test.sh VIGILD. Exit 77 without GStreamer/ffmpeg/root, unless
# VIGIL_REQUIRE_FETCHED=1.
set -u
vigild=$(realpath "$1")
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
echo PASS
