#!/usr/bin/env python3
"""Benchmark: receive + RTP + depacketize on one core (taskset -c 0), Vigil against GStreamer
(pcapparse ! rtpjitterbuffer ! rtph264depay) and FFmpeg (-f rtp input, -c copy), on the same
capture of a real sender (GStreamer x264enc ! rtph264pay, 640x480 noise at 6 Mbit/s).

  bench_dp.py VIGILD SOURCE_ROOT

The 600 recorded frames are played 5 times in a row as one stream (rtp_pcap.py repeat).
Figures are medians of 5 runs. Vigil: its own TSC count of the RX loop (EAL start-up excluded),
from the report. GStreamer: its "Execution ended after" (PLAYING to EOS). FFmpeg cannot read a
pcap, so the capture is replayed to it over loopback UDP from the other core, and its CPU time
(utime + stime, 10 ms ticks) less that of the same run with 50 packets is divided by the packets.
The floor: the same RX loop doing only rx_burst and free (--rx-only), as testpmd's rxonly
forwarding does, since Debian's testpmd cannot be told to stop at the end of a capture.
Never gating: prints figures and ratios."""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

vigild, root = os.path.realpath(sys.argv[1]), sys.argv[2]
sys.path.insert(0, os.path.join(root, 'tests', 'dataplane'))
import rtp_pcap  # noqa: E402

tmp = tempfile.mkdtemp()
port = 20000 + (os.getpid() % 4000) * 10  # our own, beside other tests
cap, sdp = os.path.join(tmp, 'cap.pcap'), os.path.join(tmp, 'cam.sdp')
open(sdp, 'w').write('v=0\no=- 0 0 IN IP4 127.0.0.1\ns=bench\nc=IN IP4 127.0.0.1\nt=0 0\n'
                     'm=video %d RTP/AVP 96\na=rtpmap:96 H264/90000\n' % port)
rec = subprocess.Popen([sys.executable, os.path.join(root, 'tests/dataplane/rtp_pcap.py'), 'record', cap, str(port)],
                       stdout=subprocess.PIPE, text=True)
rec.stdout.readline()
subprocess.run(['gst-launch-1.0', '-q', 'videotestsrc', 'num-buffers=600', 'pattern=snow', '!',
                'video/x-raw,width=640,height=480,framerate=25/1', '!', 'x264enc', 'speed-preset=ultrafast',
                'bitrate=6000', 'key-int-max=30', '!', 'rtph264pay', 'mtu=1400', 'pt=96', 'config-interval=-1', '!',
                'udpsink', 'host=127.0.0.1', 'port=%d' % port, 'sync=false'], check=True)
rec.wait()
# Five times over as one stream (about 70,000 packets), so the loop runs long enough to measure.
rtp_pcap.repeat(cap, cap + '.5', 5)
os.replace(cap + '.5', cap)
frames = rtp_pcap.read_pcap(cap)
n = len(frames)
print('capture: %d RTP packets, 3000 frames of 640x480 H.264 (GStreamer rtph264pay, MTU 1400; 600 recorded, played 5 times)' % n)


def ours(decode, rx_only=False):
    r = []
    for _ in range(5):
        args = [vigild, 'run', '--pcap', cap, '--sdp', sdp, '--report', tmp + '/r.json', '--until-eof']
        extra = ['--rx-only'] if rx_only else [] if decode else ['--no-decode']
        subprocess.run(['taskset', '-c', '0'] + args + extra, check=True)
        j = json.load(open(tmp + '/r.json'))
        rx = j['stages']['rx']
        assert rx['frames'] == n
        assert rx_only or j['cameras'][0]['rtp_packets'] == n and (not decode or j['cameras'][0]['frames_decoded'] == 3000)
        r.append((rx['seconds'], rx['cycles_per_frame'] * rx['frames'] / rx['seconds']))
    return statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)


def gst():
    r = []
    for _ in range(5):
        out = subprocess.run(['taskset', '-c', '0', 'gst-launch-1.0', 'filesrc', 'location=' + cap, '!', 'pcapparse',
                              'dst-port=%d' % port, '!', 'application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96',
                              '!', 'rtpjitterbuffer', 'latency=200', '!', 'rtph264depay', '!', 'fakesink', 'sync=false'],
                             capture_output=True, text=True, check=True).stdout
        h, m, s = re.search(r'Execution ended after (\d+):(\d+):([\d.]+)', out).groups()
        r.append(int(h) * 3600 + int(m) * 60 + float(s))
    return statistics.median(r)


def ffmpeg_cpu(count):
    p = subprocess.Popen(['taskset', '-c', '0', 'ffmpeg', '-v', 'error', '-protocol_whitelist', 'file,udp,rtp',
                          '-i', sdp, '-c', 'copy', '-f', 'null', '-'], stdin=subprocess.DEVNULL)
    time.sleep(0.8)  # ffmpeg opens its socket
    os.sched_setaffinity(0, {1})
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.time()
    for i, (_, fr) in enumerate(frames[:count]):
        s.sendto(rtp_pcap.parse(fr)[1], ('127.0.0.1', port))
        if i % 64 == 63:  # about 60k packets/s: loopback and ffmpeg's socket buffer keep up
            while time.time() - t0 < (i + 1) / 60000:
                pass
    time.sleep(0.5)
    st = open('/proc/%d/stat' % p.pid).read().rsplit(')', 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf('SC_CLK_TCK')
    p.kill()
    p.wait()
    return cpu


def ffmpeg():
    full = statistics.median(ffmpeg_cpu(n) for _ in range(5))
    base = statistics.median(ffmpeg_cpu(50) for _ in range(3))
    return max(full - base, 0.01)


sec, hz = ours(False)
rsec, _ = ours(False, rx_only=True)
gsec = gst()
fsec = ffmpeg()
dsec, _ = ours(True)
pps = lambda s: n / s
cpp = lambda s: s * hz / n
print('Vigil    RX+RTP+depacketize: %10.0f packets/s %8.0f cycles/packet' % (pps(sec), cpp(sec)))
print('GStreamer pcapparse ! rtpjitterbuffer ! rtph264depay: %10.0f packets/s %8.0f cycles/packet  -> Vigil is %.1fx'
      % (pps(gsec), cpp(gsec), gsec / sec))
print('FFmpeg   -f rtp (UDP loopback, CPU time): %10.0f packets/s %8.0f cycles/packet  -> Vigil is %.1fx'
      % (pps(fsec), cpp(fsec), fsec / sec))
print('net_pcap rx_burst + free only (testpmd rxonly\'s loop, same binary): %10.0f packets/s %8.0f cycles/packet'
      ' -> Vigil costs %.2fx of bare RX' % (pps(rsec), cpp(rsec), sec / rsec))
print('Vigil software decode (libavcodec, 1 thread): %.0f frames/s per core (640x480 H.264 noise)' % (3000 / dsec))
