#!/usr/bin/env python3
"""Make the hand-written seeds of tests/fuzz/corpus/store_seg/: segments in the store's format
(store/store_int.h) — clean, torn, bit-flipped, O_DIRECT-aligned, meta journal, empty."""
import os, struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, '..', 'fuzz', 'corpus', 'store_seg')
os.makedirs(out, exist_ok=True)

T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)

def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc = T[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff

def seg_hdr(kind=1, align_log2=3, dep=0x1234, seg=0):
    h = struct.pack('<IHBBQIIQ', 0x31534756, 1, align_log2, kind, dep, seg, 0, 1700000000 * 10**9)
    h += b'\0' * (60 - len(h))
    return h + struct.pack('<I', crc32c(h))

def rec(seq, payload, rtype=1, cipher=1, dep=0x1234):
    h = struct.pack('<IHBBII', 0x31524756, 1, rtype, cipher, len(payload), 0)
    h += struct.pack('<QQQ', seq, dep, 1700000000 * 10**9 + seq) + bytes((seq + k) & 0xff for k in range(24))
    h += struct.pack('<II', 0, 0)
    hcrc = crc32c(h)
    h = h[:12] + struct.pack('<I', hcrc) + h[16:]
    crc = crc32c(payload, crc32c(h))
    return h[:64] + struct.pack('<I', crc) + h[68:]

def pad(b, a):
    return b + b'\0' * (-len(b) % a)

def segment(n, align=8, rtype=1, plen=lambda i: 296 + 16 + 40 + 13 * i):
    s = pad(seg_hdr(kind=1 if rtype == 1 else 2, align_log2=12 if align == 4096 else 3), align)
    for i in range(n):
        p = bytes((i * 31 + k) & 0xff for k in range(plen(i)))
        s += pad(rec(i + 1, p, rtype, 1 if rtype == 1 else 0) + p, align)
    return s

def write(name, data):
    open(os.path.join(out, 'seed-' + name), 'wb').write(data)

clean = segment(4)
write('clean', clean)
write('empty', seg_hdr())
write('torn-tail', clean[:-50])
write('torn-header', clean[:len(clean) - 10 - (296 + 16 + 40 + 39 + 72) ])
flip = bytearray(clean); flip[64 + 72 + 100] ^= 0x08; write('flip-payload', bytes(flip))
flip = bytearray(clean); flip[64 + 9] ^= 0x01; write('flip-length', bytes(flip))
write('garbage-tail', clean + b'\xa5' * 200)
write('zero-tail', clean + b'\0' * 300)
write('odirect', segment(2, align=4096, plen=lambda i: 300 + i))
write('meta', segment(3, rtype=2, plen=lambda i: 16))
write('bad-seg-header', b'VGS1' + b'\0' * 60 + clean[64:])
