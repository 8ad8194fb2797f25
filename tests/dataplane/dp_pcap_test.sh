#!/bin/bash
# Integration: real senders (GStreamer rtph264pay/rtph265pay/rtpjpegpay, ffmpeg -f rtp) stream
# four cameras at once on loopback; the capture is replayed through DPDK's net_pcap by
# `vigild run --pcap`, and what a user sees is checked:
#   - every camera's frames have the same framemd5 as ffmpeg decoding the elementary stream;
#   - a seeded impairment (drop, duplicate, swap) is counted exactly, camera by camera;
#   - malformed packets are counted exactly and every good frame around them still decodes;
#   - VLAN-tagged IPv6, one capture per camera and decode workers give the same frames;
#   - a camera that reboots mid-stream resyncs; RTCP sender reports are used.
# Usage: dp_pcap_test.sh VIGILD SOURCE_ROOT. Exit 77 when a peer is missing or DPDK's EAL
# cannot start here, unless VIGIL_REQUIRE_FETCHED=1.
set -u
vigild=$(realpath "$1")
root=$(realpath "$2")
tool=$root/tests/dataplane/rtp_pcap.py
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
[ "$(id -u)" = 0 ] || skip "DPDK's EAL needs root here"
t=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$t"' EXIT
cd "$t" || exit 1
N=30
# Ports of our own, so that tests running beside this one (and other engineers' runs) don't collide.
P1=$((20000 + ($$ % 4000) * 10))
P2=$((P1 + 2)) P3=$((P1 + 4)) P4=$((P1 + 6))
src="testsrc=size=320x240:rate=25"
ffmpeg -v error -f lavfi -i $src -frames:v $N -c:v libx264 -profile:v baseline -pix_fmt yuv420p -g 12 -bf 0 a.h264 || fail "ffmpeg libx264"
ffmpeg -v error -f lavfi -i $src -frames:v $N -c:v libx265 -pix_fmt yuv420p -x265-params bframes=0:keyint=12:log-level=error a.h265 || fail "ffmpeg libx265"
ffmpeg -v error -f lavfi -i $src -frames:v $N -c:v mjpeg -huffman default -q:v 5 -pix_fmt yuvj420p -f mjpeg a.mjpeg || fail "ffmpeg mjpeg"
for c in h264 h265 mjpeg; do
	# In Matroska the frames carry timestamps, so GStreamer's RTP timestamps advance per frame.
	ffmpeg -v error -i a.$c -c copy a_$c.mkv || fail "mkv $c"
	ffmpeg -v error -i a.$c -f framemd5 ref_$c.md5 || fail "framemd5 $c"
done

python3 "$tool" record cap.pcap $P1,$P2,$P3,$P4,$((P4 + 1)) --idle 1.5 --max 30 >rec.log &
rec=$!
for i in $(seq 600); do grep -q ready rec.log 2>/dev/null && break; sleep 0.1; done
grep -q ready rec.log || fail "the recorder was not ready after 60 s"
pay="mtu=400 ! udpsink host=127.0.0.1 sync=false"
gst-launch-1.0 -q filesrc location=a_h264.mkv ! matroskademux ! h264parse ! rtph264pay config-interval=-1 pt=96 aggregate-mode=zero-latency $pay port=$P1 &
gst-launch-1.0 -q filesrc location=a_h265.mkv ! matroskademux ! h265parse ! rtph265pay config-interval=-1 pt=97 aggregate-mode=zero-latency $pay port=$P2 &
gst-launch-1.0 -q filesrc location=a_mjpeg.mkv ! matroskademux ! jpegparse ! rtpjpegpay pt=26 $pay port=$P3 &
ffmpeg -v error -re -i a.h264 -c copy -f rtp -payload_type 96 "rtp://127.0.0.1:$P4?pkt_size=400" >ff.sdp &
wait $rec || fail "recorder"
wait
cat rec.log
# The SDP a DESCRIBE would give: ffmpeg's own for its stream (its sprop-parameter-sets included).
{
	printf 'v=0\no=- 0 0 IN IP4 127.0.0.1\ns=vigil test\nt=0 0\n'
	printf 'm=video %d RTP/AVP 96\na=rtpmap:96 H264/90000\n' $P1
	printf 'm=video %d RTP/AVP 97\na=rtpmap:97 H265/90000\n' $P2
	printf 'm=video %d RTP/AVP 26\n' $P3
	sed -n '/^m=video/,$p' ff.sdp
} >all.sdp

check_md5() { # FRAMEMD5 STREAM REFERENCE
	cmp -s <(grep "^$2," "$1" | awk -F', *' '{print $5, $6}') <(grep -v '^#' "$3" | awk -F', *' '{print $5, $6}') ||
		fail "$1 stream $2 differs from ffmpeg's $3"
}
check_all_md5() {
	check_md5 "$1" 0 ref_h264.md5
	check_md5 "$1" 1 ref_h265.md5
	check_md5 "$1" 2 ref_mjpeg.md5
	check_md5 "$1" 3 ref_h264.md5
}

out=$("$vigild" run --pcap cap.pcap --sdp all.sdp --report r.json --until-eof --framemd5 out.md5 2>&1)
rc=$?
case "$out" in *"EAL init failed"*) skip "DPDK EAL cannot start here: $out" ;; esac
[ $rc = 0 ] || fail "vigild run: $out"
check_all_md5 out.md5
python3 - "$N" <<'PY' || fail "clean capture report"
import json, sys
n = int(sys.argv[1])
r = json.load(open('r.json'))
cams = r['cameras']
assert [c['id'] for c in cams] == ['cam1', 'cam2', 'cam3', 'cam4'], cams
assert [c['codec'] for c in cams] == ['h264', 'h265', 'mjpeg', 'h264'], cams
for c in cams:
    for k in ('rtp_lost', 'rtp_reordered', 'rtp_duplicates', 'rtp_malformed', 'frames_corrupt'):
        assert c[k] == 0, (c['id'], k, c[k])
    assert c['frames_decoded'] == n, c
    assert c['rtp_packets'] > n, c
assert r['alerts'] == [] and r['totals']['alerts'] == 0
# ffmpeg sends RTCP sender reports to port + 1: they give cam4 its wall clock.
assert cams[3]['rtcp_sr'] > 0 and r['stages']['rx']['rtcp'] >= cams[3]['rtcp_sr'], cams[3]
assert r['stages']['rx']['frames'] == sum(c['rtp_packets'] for c in cams) + r['stages']['rx']['rtcp']
print('clean: %d cameras, %d frames each, framemd5 equal to ffmpeg' % (len(cams), n))
PY

python3 "$tool" impair cap.pcap imp.pcap imp.json --seed 7 --drop 0.03 --dup 0.03 --swap 0.05
"$vigild" run --pcap imp.pcap --sdp all.sdp --report ri.json --until-eof || fail "vigild run (impaired)"
python3 - "$N" <<'PY' || fail "impaired counts"
import json, sys
n = int(sys.argv[1])
r, e = json.load(open('ri.json')), json.load(open('imp.json'))
for c in r['cameras']:
    want = e[str(c['dst_port'])]
    for k, v in want.items():
        assert c[k] == v, (c['id'], k, 'reported', c[k], 'injected', v)
    assert c['rtp_late'] == 0 and c['rtp_malformed'] == 0, c
    assert c['frames_decoded'] > 0, c
    if want['rtp_lost']:  # a lost packet costs a frame: corrupt, or not decoded at all
        assert c['frames_corrupt'] > 0 or c['frames_decoded'] < n, c
print('impaired (seed 7): ' + ', '.join('%s lost %d dup %d reordered %d' % (c['id'], c['rtp_lost'], c['rtp_duplicates'], c['rtp_reordered']) for c in r['cameras']))
PY

python3 "$tool" inject cap.pcap inj.pcap inj.json --every 4
"$vigild" run --pcap inj.pcap --sdp all.sdp --report rj.json --until-eof --framemd5 inj.md5 || fail "vigild run (malformed)"
check_all_md5 inj.md5
python3 - "$N" <<'PY' || fail "malformed counts"
import json, sys
r, e = json.load(open('rj.json')), json.load(open('inj.json'))
for c in r['cameras']:
    assert c['rtp_malformed'] == e[str(c['dst_port'])]['rtp_malformed'], (c, e)
    assert c['frames_decoded'] == int(sys.argv[1]) and c['frames_corrupt'] == 0 and c['rtp_lost'] == 0, c
for k, v in e['_rx'].items():
    assert r['stages']['rx'][k] == v, (k, r['stages']['rx'][k], v)
print('malformed: ' + ', '.join('%s %d' % (c['id'], c['rtp_malformed']) for c in r['cameras']) + '; rx ' + json.dumps(e['_rx']))
PY

# Decode on two worker threads fed by rings: the same frames.
"$vigild" run --pcap cap.pcap --sdp all.sdp --report rw.json --until-eof --framemd5 w2.md5 --decode-workers 2 ||
	fail "vigild run (decode workers)"
check_all_md5 w2.md5
python3 "$tool" v6vlan cap.pcap v6.pcap
"$vigild" run --pcap v6.pcap --sdp all.sdp --report r6.json --until-eof --framemd5 v6.md5 || fail "vigild run (IPv6, VLAN)"
check_all_md5 v6.md5
python3 "$tool" split cap.pcap c1.pcap:$P1,c2.pcap:$P2,c3.pcap:$P3,c4.pcap:$P4
"$vigild" run --pcap c1.pcap,c2.pcap,c3.pcap,c4.pcap --sdp all.sdp --report r4.json --until-eof --framemd5 p4.md5 ||
	fail "vigild run (4 captures)"
check_all_md5 p4.md5
# A camera that reboots mid-stream (new SSRC, new numbering): counted as a resync, nothing lost,
# every frame of both runs decoded.
python3 "$tool" restart c4.pcap c4r.pcap
"$vigild" run --pcap c4r.pcap --sdp all.sdp --report rr.json --until-eof || fail "vigild run (camera restart)"
python3 - "$N" <<'PY' || fail "camera restart"
import json, sys
n = int(sys.argv[1])
c = json.load(open('rr.json'))['cameras'][3]
assert c['rtp_resyncs'] == 1 and c['rtp_lost'] == 0 and c['rtp_late'] == 0 and c['frames_decoded'] == 2 * n, c
print('restart: %s resynced once, %d frames decoded' % (c['id'], c['frames_decoded']))
PY
# Without an SDP, cameras are found by (port, SSRC): PT 26 is JPEG, dynamic types H.264.
"$vigild" run --pcap c1.pcap,c3.pcap --report rn.json --until-eof --framemd5 nosdp.md5 || fail "vigild run (no SDP)"
check_md5 nosdp.md5 0 ref_h264.md5
check_md5 nosdp.md5 1 ref_mjpeg.md5
# ARP and ICMP echo for the dataplane's address are answered on the port they came in on.
python3 - "$root/tests/dataplane" <<'PY' || fail "making the ARP/ICMP capture"
import struct, sys
sys.path.insert(0, sys.argv[1])
import rtp_pcap as r
arp = b'\xff' * 6 + b'\xaa\xbb\xcc\xdd\xee\xff\x08\x06' + bytes([0, 1, 8, 0, 6, 4, 0, 1]) + b'\xaa\xbb\xcc\xdd\xee\xff' + bytes([10, 0, 0, 9]) + bytes(6) + bytes([10, 0, 0, 2])
icmp = bytes([8, 0, 0, 0, 0x12, 0x34, 0, 1]) + b'vigil-ping'
icmp = icmp[:2] + struct.pack('!H', r.csum(icmp)) + icmp[4:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0, bytes([10, 0, 0, 9]), bytes([10, 0, 0, 2]))
ip = ip[:10] + struct.pack('!H', r.csum(ip)) + ip[12:]
ping = b'\x02\x70\x63\x61\x70\x00\xaa\xbb\xcc\xdd\xee\xff\x08\x00' + ip + icmp
r.write_pcap('ask.pcap', [(1.0, arp), (1.1, ping)])
PY
"$vigild" run --pcap ask.pcap --ip 10.0.0.2 --tx-pcap "$t/tx.pcap" --report ra.json --until-eof || fail "vigild run --ip"
python3 - "$root/tests/dataplane" <<'PY' || fail "ARP/ICMP answers"
import json, sys
sys.path.insert(0, sys.argv[1])
import rtp_pcap as r
tx = [f for _, f in r.read_pcap('tx.pcap')]
assert len(tx) == 2, tx
a, e = tx
assert a[12:14] == b'\x08\x06' and a[20:22] == b'\x00\x02' and a[28:32] == bytes([10, 0, 0, 2]) and a[38:42] == bytes([10, 0, 0, 9]), a
assert e[12:14] == b'\x08\x00' and e[23] == 1 and e[26:30] == bytes([10, 0, 0, 2]) and e[30:34] == bytes([10, 0, 0, 9]), e
assert e[34] == 0 and r.csum(e[34:]) == 0 and r.csum(e[14:34]) == 0 and e[42:] == b'vigil-ping', e
assert json.load(open('ra.json'))['stages']['rx']['answered'] == 2
print('answered: ARP who-has 10.0.0.2 and an ICMP echo, checksums valid')
PY
# One-line errors.
msg=$("$vigild" run --pcap missing.pcap --report x.json --until-eof 2>&1) && fail "a missing capture was accepted"
[ "$(echo "$msg" | wc -l)" = 1 ] || fail "error is not one line: $msg"
printf 'v=0\nm=video x RTP/AVP 96\n' >bad.sdp
msg=$("$vigild" run --pcap cap.pcap --sdp bad.sdp --report x.json --until-eof 2>&1) && fail "a bad SDP was accepted"
echo "$msg" | grep -q "bad.sdp: sdp line 2" || fail "bad SDP error: $msg"
echo "PASS"
