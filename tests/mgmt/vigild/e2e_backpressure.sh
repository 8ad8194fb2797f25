#!/bin/bash
# e2e_backpressure.sh BUILD SRCROOT: when the analysis falls behind, the newest frames of the
# affected cameras are dropped and counted, nothing queues without bound, decoding never waits,
# and every camera still gets its turn (DESIGN.md: "a full ring means the newest frame of that
# camera is dropped and counted, never that an older stage blocks"). A capture file replayed
# without --drop-when-behind is its own buffer: every sampled frame is analysed, none dropped.
#
# The capture is read as fast as the machine can (a hundred times real time), so with every frame
# sampled (--analysis-fps 10 on a 10 fps camera) the analysis is far behind, as a live appliance
# is when it is given more cameras than it can analyse.
set -uo pipefail
BUILD=$(realpath "$1") ROOT=$(realpath "$2")
. "$ROOT/tests/mgmt/vigild/e2e_lib.sh"
e2e_need e2e_backpressure
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

# Two cameras: the recording, and the same recording sent to another port.
node "$ROOT/tests/mgmt/vigild/pcap-tool.js" port "$rec/camera.pcap" "$tmp/cam2.pcap" 5006 || fail "pcap-tool"
{ cat "$rec/camera.sdp"; printf 'm=video 5006 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1\n'; } \
	>"$tmp/two.sdp"

# Live-like: one frame queued per camera.
"$vigild" run --pcap "$rec/camera.pcap,$tmp/cam2.pcap" --sdp "$tmp/two.sdp" --until-eof --analysis-fps 10 \
	--analysis-queue 1 --drop-when-behind --report "$tmp/live.json" 2>"$tmp/live.err" || fail "live-like run: $(tail -1 "$tmp/live.err")"
j() { e2e_json "$tmp/$1.json" "$2"; }
[ "$(j live 'r.stages.analysis.mode')" = '"drop-newest"' ] || fail "mode is $(j live 'r.stages.analysis.mode')"
[ "$(j live 'r.stages.analysis.decode_wait_seconds')" = 0 ] || fail "decoding waited for the analysis in a live-like run"
[ "$(j live 'r.stages.analysis.queue_max')" -le 1 ] || fail "a queue held $(j live 'r.stages.analysis.queue_max') frames, more than its depth 1"
for i in 0 1; do
	c="r.cameras[$i]"
	decoded=$(j live "$c.frames_decoded") sampled=$(j live "$c.frames_sampled")
	analysed=$(j live "$c.frames_analysed") dropped=$(j live "$c.frames_dropped")
	echo "cam$((i + 1)): decoded $decoded, sampled $sampled, analysed $analysed, dropped $dropped"
	[ "$decoded" = 200 ] || fail "cam$((i + 1)): $decoded of 200 frames decoded: decoding waited for the analysis"
	[ "$dropped" -gt 0 ] || fail "cam$((i + 1)): nothing dropped while the analysis was behind"
	[ $((analysed + dropped)) = "$sampled" ] || fail "cam$((i + 1)): analysed + dropped != sampled: a frame went uncounted"
	[ "$analysed" -gt 0 ] || fail "cam$((i + 1)): never analysed: the other camera starved it"
	eval "analysed$i=$analysed"
done
# Taken in turn: neither camera gets more than twice the other's share.
[ $((analysed0 * 2)) -ge "$analysed1" ] && [ $((analysed1 * 2)) -ge "$analysed0" ] ||
	fail "unfair analysis: $analysed0 frames of cam1 against $analysed1 of cam2"
[ "$(j live 'r.stages.analysis.frames_dropped')" = $(($(j live 'r.cameras[0].frames_dropped') + $(j live 'r.cameras[1].frames_dropped'))) ] ||
	fail "the stage's drops are not the cameras' drops"

# Recorded, lossless (the default for captures): the same two cameras, nothing dropped.
"$vigild" run --pcap "$rec/camera.pcap,$tmp/cam2.pcap" --sdp "$tmp/two.sdp" --until-eof --analysis-fps 10 \
	--analysis-queue 2 --report "$tmp/rec.json" 2>"$tmp/rec.err" || fail "recorded run: $(tail -1 "$tmp/rec.err")"
[ "$(j rec 'r.stages.analysis.mode')" = '"lossless"' ] || fail "a capture's run is not lossless"
for i in 0 1; do
	[ "$(j rec "r.cameras[$i].frames_dropped")" = 0 ] || fail "cam$((i + 1)): a lossless run dropped frames"
	[ "$(j rec "r.cameras[$i].frames_analysed")" = 200 ] || fail "cam$((i + 1)): $(j rec "r.cameras[$i].frames_analysed") of 200 frames analysed"
done
# The same frames give the same faces on both cameras.
[ "$(j rec 'r.cameras[0].faces_detected')" = "$(j rec 'r.cameras[1].faces_detected')" ] ||
	fail "the same recording on two cameras found $(j rec 'r.cameras[0].faces_detected') and $(j rec 'r.cameras[1].faces_detected') faces"
[ "$(j rec 'r.stages.analysis.queue_max')" -le 2 ] || fail "a queue held more than its depth 2"
e2e_done "e2e_backpressure: live-like $analysed0 + $analysed1 frames analysed, $(j live 'r.stages.analysis.frames_dropped') dropped and counted; lossless 400 of 400"
