#!/usr/bin/env python3
"""Seed the dataplane's fuzz corpora from a capture of real senders (dp_pcap_test.sh's layout:
H.264 on 5004, H.265 on 5006, JPEG on 5008) and SDP files:
  make_dp_seeds.py CAPTURE.pcap CORPUS_ROOT SDP...
libFuzzer then grows them (-merge=1 back into tests/fuzz/corpus/<target>/)."""
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtp_pcap  # noqa: E402


def put(root, target, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb').write(data)


def main():
    cap, root, sdps = sys.argv[1], sys.argv[2], sys.argv[3:]
    frames = rtp_pcap.read_pcap(cap)
    flows = {}
    for _, fr in frames:
        p = rtp_pcap.parse(fr)
        if p:
            flows.setdefault(p[0], []).append((fr, p[1]))
    for port, pk in flows.items():
        for fr, _ in pk[:2]:
            put(root, 'dp_pkt', fr[:300])
        for start in (0, len(pk) // 2):
            put(root, 'dp_rtp', b''.join(bytes([min(len(r), 255)]) + r[:255] for _, r in pk[start:start + 24]))
        target = {5004: 'dp_h264', 5006: 'dp_h265', 5008: 'dp_jpeg', 5010: 'dp_h264'}[port]
        for start in (0, len(pk) // 3):
            seq = b''
            last_ts = None
            for _, r in pk[start:start + 12]:
                ts = struct.unpack('!I', r[4:8])[0]
                step = 1 if last_ts is not None and ts != last_ts else 0
                last_ts = ts
                pay = r[12:][:600]
                seq += struct.pack('!HB', len(pay), (r[1] >> 7) | (step << 2)) + pay
            put(root, target, seq)
    for s in sdps:
        put(root, 'dp_sdp', open(s, 'rb').read())


if __name__ == '__main__':
    main()
