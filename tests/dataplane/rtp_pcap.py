#!/usr/bin/env python3
"""Captures for the dataplane's integration tests, from real senders.

  rtp_pcap.py record OUT.pcap PORT[,PORT...] [--idle S] [--max S]
      Receive the UDP datagrams a real sender (GStreamer, ffmpeg) sends to 127.0.0.1:PORT and
      write them, in arrival order, as Ethernet/IPv4/UDP frames into a classic pcap, as tcpdump -i lo
      would (no root, no capture buffer to overflow: the socket buffer is forced to 64 MiB).
  rtp_pcap.py impair IN.pcap OUT.pcap EXPECT.json --seed N [--drop P] [--dup P] [--swap P]
      Drop, duplicate and swap neighbouring RTP packets of each flow with a seeded RNG; EXPECT
      gets, per destination port, the counts the dataplane must report.
  rtp_pcap.py inject IN.pcap OUT.pcap EXPECT.json [--every N]
      After every Nth frame-ending packet of each flow, insert malformed RTP (truncated header, bad
      version, CSRCs/extension/padding past the end) and, for H.264, malformed payloads (FU-A
      without start, STAP-A sizes past the end) that take a sequence number of their own (later
      packets are renumbered), plus non-camera frames (ARP, an IPv4 fragment, TCP, IPv6 UDP to an
      unknown port). The good packets are untouched, so every frame must still decode.
  rtp_pcap.py v6vlan IN.pcap OUT.pcap        the same packets as VLAN-tagged IPv6
  rtp_pcap.py split IN.pcap OUT:PORT[,OUT:PORT...]   one capture per destination port
  rtp_pcap.py restart IN.pcap OUT.pcap       IN, then IN again as a rebooted camera (new SSRC)
  rtp_pcap.py repeat IN.pcap OUT.pcap N      IN N times as one continuous stream (benchmarks)
"""
import json
import random
import select
import socket
import struct
import sys
import time


def write_pcap(path, frames):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in frames:
            f.write(struct.pack('<IIII', int(ts), int((ts % 1) * 1e6), len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    out = []
    with open(path, 'rb') as f:
        hdr = f.read(24)
        magic = struct.unpack('<I', hdr[:4])[0]
        assert magic in (0xa1b2c3d4, 0xa1b23c4d), 'classic little-endian pcap only (us or ns)'
        div = 1e6 if magic == 0xa1b2c3d4 else 1e9
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            s, us, incl, _ = struct.unpack('<IIII', rh)
            out.append((s + us / div, f.read(incl)))
    return out


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ipv4(payload, proto=17, frag=0x4000):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0, frag, 64, proto, 0,
                    bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return b'\0' * 12 + b'\x08\x00' + h + payload


def udp_frame(dport, payload, sport=40000):
    return ipv4(struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload)


def is_rtcp(b):
    return len(b) >= 2 and 192 <= b[1] <= 223


def parse(fr):
    """(dst_port, rtp bytes) of an Ethernet/IPv4/UDP frame, or None."""
    if len(fr) < 42 or fr[12:14] != b'\x08\x00' or fr[23] != 17:
        return None
    ihl = (fr[14] & 15) * 4
    u = 14 + ihl
    return struct.unpack('!H', fr[u + 2:u + 4])[0], fr[u + 8:]


def record(out, ports, idle, maxs):
    socks = []
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        s.bind(('127.0.0.1', p))
        socks.append((s, p))
    print('ready', flush=True)
    frames, start, last = [], time.time(), None
    while time.time() - start < maxs:
        r, _, _ = select.select([s for s, _ in socks], [], [], 0.1)
        now = time.time()
        for s, p in socks:
            if s in r:
                while True:
                    try:
                        data = s.recv(65535, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    frames.append((now, udp_frame(p, data)))
                    last = now
        if last is not None and now - last > idle:
            break
    write_pcap(out, frames)
    print('recorded %d packets' % len(frames))


def impair(inp, out, expect, seed, pdrop, pdup, pswap):
    rng = random.Random(seed)
    frames = read_pcap(inp)
    flows, other = {}, []
    # Each flow is impaired on its own list; entries keep their place in the capture (key), and a
    # swap exchanges the contents of two neighbouring entries of one flow.
    for i, (ts, fr) in enumerate(frames):
        p = parse(fr)
        if not p or is_rtcp(p[1]):  # RTCP passes untouched
            other.append(((i, 0), ts, fr))
            continue
        flows.setdefault(p[0], []).append((i, ts, fr, struct.unpack('!H', p[1][2:4])[0]))
    exp, merged = {}, list(other)
    for port, pkts in sorted(flows.items()):  # sorted: the same seed gives the same impairment
        e = exp[str(port)] = {'rtp_packets': 0, 'rtp_lost': 0, 'rtp_duplicates': 0, 'rtp_reordered': 0}
        lst = []
        for k, (i, ts, fr, sq) in enumerate(pkts):
            x = rng.random()
            inner = 5 <= k < len(pkts) - 5  # the first and last packets are kept: no one could tell
            if inner and x < pdrop:
                e['rtp_lost'] += 1
                continue
            lst.append([(i, 0), ts, fr, sq])
            if inner and x < pdrop + pdup:
                lst.append([(i, 1), ts, fr, sq])
                e['rtp_duplicates'] += 1
        j = 5
        while j + 7 < len(lst):
            a, b = lst[j], lst[j + 1]
            if a[3] != b[3] and lst[j - 1][3] != a[3] and lst[j + 2][3] != b[3] and rng.random() < pswap:
                a[2:], b[2:] = b[2:], a[2:]
                e['rtp_reordered'] += 1
                j += 3
                continue
            j += 1
        e['rtp_packets'] = len(lst)
        merged += [(x[0], x[1], x[2]) for x in lst]
    merged.sort(key=lambda x: x[0])
    write_pcap(out, [(m[1], m[2]) for m in merged])
    json.dump(exp, open(expect, 'w'), indent=1)


def rtp_hdr(b0, m_pt, seq, ts, ssrc):
    return struct.pack('!BBHII', b0, m_pt, seq & 0xffff, ts, ssrc)


def inject(inp, out, expect, every):
    frames = read_pcap(inp)
    shift, ends, exp, res = {}, {}, {'_rx': {'not_udp': 0, 'ip_fragments': 0, 'unknown_flow': 0}}, []
    for ts, fr in frames:
        p = parse(fr)
        if not p:
            res.append((ts, fr))
            continue
        port, rtp = p
        if is_rtcp(rtp):
            res.append((ts, fr))
            continue
        sh = shift.get(port, 0)
        s0 = struct.unpack('!H', rtp[2:4])[0]
        rtp = rtp[:2] + struct.pack('!H', (s0 + sh) & 0xffff) + rtp[4:]
        res.append((ts, udp_frame(port, rtp)))
        e = exp.setdefault(port, {'rtp_malformed': 0, 'injected_payloads': 0})
        if not rtp[1] & 0x80:
            continue
        ends[port] = ends.get(port, 0) + 1
        if ends[port] % every:
            continue
        pt, seq, rts, ssrc = rtp[1] & 0x7f, (s0 + sh) & 0xffff, struct.unpack('!I', rtp[4:8])[0], struct.unpack('!I', rtp[8:12])[0]
        bad = [
            rtp[:8],                                                    # truncated header
            bytes([0x40]) + rtp[1:],                                    # version 1
            bytes([0x8f]) + rtp[1:12] + b'\0' * 8,                      # 15 CSRCs in 20 bytes
            bytes([0x90]) + rtp[1:12] + b'\xbe\xde\x00\x40' + b'\0' * 4,  # extension past the end
            bytes([0xa0]) + rtp[1:12] + b'\x00\x00\x00\x7f',            # padding past the end
        ]
        for b in bad:
            res.append((ts, udp_frame(port, b)))
            e['rtp_malformed'] += 1
        if pt == 96:  # H.264 in these tests: payloads that take a sequence number
            for payload in (b'\x7c\x05\x01\x02', b'\x18\x00\x09\x67\x01'):
                sh += 1
                seq = (seq + 1) & 0xffff
                res.append((ts, udp_frame(port, rtp_hdr(0x80, pt, seq, rts, ssrc) + payload)))
                e['rtp_malformed'] += 1
                e['injected_payloads'] += 1
            shift[port] = sh
        # Frames that are no camera's: ARP, an IPv4 fragment, TCP, UDP to a port nobody owns.
        res.append((ts, b'\xff' * 6 + b'\x02' * 6 + b'\x08\x06' + b'\0' * 28))
        res.append((ts, ipv4(struct.pack('!HHHH', 1, port, 16, 0) + b'\0' * 8, frag=0x2000)))
        res.append((ts, ipv4(b'\0' * 20, proto=6)))
        res.append((ts, udp_frame(9, b'\x80' + b'\0' * 20)))
        exp['_rx']['not_udp'] += 2
        exp['_rx']['ip_fragments'] += 1
        exp['_rx']['unknown_flow'] += 1
    write_pcap(out, res)
    json.dump({str(k): v for k, v in exp.items()}, open(expect, 'w'), indent=1)


def v6vlan(inp, out):
    """The same capture as IPv6 in an 802.1Q tag (VLAN 100), with a destination-options header."""
    res = []
    for ts, fr in read_pcap(inp):
        p = parse(fr)
        if not p:
            res.append((ts, fr))
            continue
        ihl = (fr[14] & 15) * 4
        u = fr[14 + ihl:]
        ext = bytes([17, 0]) + bytes([1, 4, 0, 0, 0, 0])  # next header UDP; PadN option
        ip6 = struct.pack('!IHBB', 0x60000000, len(ext) + len(u), 60, 64) + bytes(15) + b'\1' + bytes(15) + b'\1'
        res.append((ts, b'\0' * 12 + b'\x81\x00\x00\x64\x86\xdd' + ip6 + ext + u))
    write_pcap(out, res)


def restart(inp, out):
    """The capture twice in a row, the second time as a camera that rebooted: a new SSRC, its
    sequence numbers and timestamps starting somewhere else."""
    frames = read_pcap(inp)
    res = list(frames)
    t_end = frames[-1][0] + 1 if frames else 0
    for ts, fr in frames:
        p = parse(fr)
        if not p:
            continue
        port, rtp = p
        seq = (struct.unpack('!H', rtp[2:4])[0] + 20000) & 0xffff
        rts = (struct.unpack('!I', rtp[4:8])[0] + 123456789) & 0xffffffff
        ssrc = struct.unpack('!I', rtp[8:12])[0] ^ 0x5a5a5a5a
        res.append((t_end + ts - frames[0][0], udp_frame(port, rtp[:2] + struct.pack('!HII', seq, rts, ssrc) + rtp[12:])))
    write_pcap(out, res)


def repeat(inp, out, times):
    """The capture TIMES times in a row as one continuous stream: sequence numbers and timestamps
    carry on (same SSRC), so a receiver sees one long recording (for benchmarks)."""
    frames = read_pcap(inp)
    res, span_t = [], (frames[-1][0] - frames[0][0] + 0.04) if frames else 0
    per_port = {}
    for _, fr in frames:
        p = parse(fr)
        if p and not is_rtcp(p[1]):
            e = per_port.setdefault(p[0], [0, None, None])
            e[0] += 1
            ts = struct.unpack('!I', p[1][4:8])[0]
            e[1] = ts if e[1] is None else e[1]
            e[2] = ts
    for k in range(times):
        for t, fr in frames:
            p = parse(fr)
            if not p or is_rtcp(p[1]) or k == 0:
                res.append((t + k * span_t, fr))
                continue
            port, rtp = p
            n, t0, t1 = per_port[port]
            seq = (struct.unpack('!H', rtp[2:4])[0] + k * n) & 0xffff
            rts = (struct.unpack('!I', rtp[4:8])[0] + k * (t1 - t0 + 3600)) & 0xffffffff
            res.append((t + k * span_t, udp_frame(port, rtp[:2] + struct.pack('!HI', seq, rts) + rtp[8:])))
    write_pcap(out, res)


def split(inp, outs_ports):
    """One capture per destination port: OUT:PORT,OUT:PORT..."""
    frames = read_pcap(inp)
    for spec in outs_ports.split(','):
        out, port = spec.rsplit(':', 1)
        write_pcap(out, [(ts, fr) for ts, fr in frames if (parse(fr) or (None,))[0] == int(port)])


def main():
    a = sys.argv[1:]
    opt = lambda name, d: type(d)(a[a.index(name) + 1]) if name in a else d
    if a[0] == 'record':
        record(a[1], [int(p) for p in a[2].split(',')], opt('--idle', 1.5), opt('--max', 60.0))
    elif a[0] == 'impair':
        impair(a[1], a[2], a[3], opt('--seed', 1), opt('--drop', 0.02), opt('--dup', 0.02), opt('--swap', 0.02))
    elif a[0] == 'inject':
        inject(a[1], a[2], a[3], opt('--every', 5))
    elif a[0] == 'v6vlan':
        v6vlan(a[1], a[2])
    elif a[0] == 'restart':
        restart(a[1], a[2])
    elif a[0] == 'repeat':
        repeat(a[1], a[2], int(a[3]))
    elif a[0] == 'split':
        split(a[1], a[2])
    else:
        sys.exit('usage: see the docstring')


if __name__ == '__main__':
    main()
