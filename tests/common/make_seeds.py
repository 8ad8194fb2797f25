#!/usr/bin/env python3
"""Make the hand-written seeds of common's fuzz corpora (tests/fuzz/corpus/{image,conf}/seed-*).

Seeds are tiny valid and nearly-valid inputs covering each format's variants; libFuzzer grows the
corpus from them (see tests/fuzz/meson.build). Needs cjpeg (libjpeg-turbo-progs). Run from anywhere.
"""
import os, struct, subprocess, zlib

here = os.path.dirname(os.path.abspath(__file__))
img = os.path.join(here, '..', 'fuzz', 'corpus', 'image')
conf = os.path.join(here, '..', 'fuzz', 'corpus', 'conf')
os.makedirs(img, exist_ok=True)
os.makedirs(conf, exist_ok=True)

def ppm(w, h):
    px = bytes((x * 37 + y * 11 + c * 80) & 0xff for y in range(h) for x in range(w) for c in range(3))
    return b'P6\n%d %d\n255\n' % (w, h) + px

def cjpeg(name, w, h, *args):
    out = subprocess.run(['cjpeg', *args], input=ppm(w, h), capture_output=True, check=True).stdout
    open(os.path.join(img, name), 'wb').write(out)
    return out

def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

def png(name, w, h, depth, color, plte=None, trns=None):
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color] * max(depth // 8, 1)
    row = max((w * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color] * depth + 7) // 8, 1)
    raw = b''.join(b'\x00' + bytes((x * 29 + y * 7) & 0xff for x in range(row)) for y in range(h))
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, color, 0, 0, 0))
    if plte:
        data += chunk(b'PLTE', plte)
    if trns:
        data += chunk(b'tRNS', trns)
    data += chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    open(os.path.join(img, name), 'wb').write(data)
    return data

j = cjpeg('seed-420.jpg', 16, 16, '-quality', '80')
cjpeg('seed-444.jpg', 9, 7, '-sample', '1x1')
cjpeg('seed-gray.jpg', 8, 8, '-grayscale')
cjpeg('seed-progressive.jpg', 17, 9, '-progressive')
cjpeg('seed-restart.jpg', 32, 16, '-restart', '1B')
cjpeg('seed-arith.jpg', 8, 8, '-arithmetic')
open(os.path.join(img, 'seed-truncated.jpg'), 'wb').write(j[: len(j) // 2])
p = png('seed-rgb.png', 5, 3, 8, 2)
png('seed-rgba.png', 4, 4, 8, 6)
png('seed-gray16.png', 3, 2, 16, 0)
png('seed-palette.png', 4, 2, 4, 3, plte=bytes(range(48)), trns=b'\x00\x80')
png('seed-graya.png', 2, 2, 8, 4)
open(os.path.join(img, 'seed-truncated.png'), 'wb').write(p[: len(p) - 20])
open(os.path.join(img, 'seed-empty'), 'wb').write(b'')
pgm = b'P5\n# comment\n4 3\n255\n' + bytes(range(0, 240, 20))
open(os.path.join(img, 'seed-gray.pgm'), 'wb').write(pgm)
open(os.path.join(img, 'seed-maxval15.pgm'), 'wb').write(b'P5 2 2 15\n\x00\x05\x0a\x0f')
open(os.path.join(img, 'seed-truncated.pgm'), 'wb').write(pgm[:-3])

confs = {
    'seed-full': '# all types\na.count = 12K\na.ratio=-0.25\na.flag = on\nb.text = "q\\"uo\\\\te"  # c\nb.mode = hybrid\n',
    'seed-crlf': 'a.count = 0x10\r\n\r\n   # indented comment\r\na.flag=0\r\n',
    'seed-errors': 'a.count = 99999999999999999999\nb.mode = nope\n',
    'seed-runtime': '\x01a.ratio = 0.1\n',
    'seed-unterminated': 'b.text = "abc\n',
}
for name, text in confs.items():
    open(os.path.join(conf, name), 'wb').write(text.encode('latin-1'))
