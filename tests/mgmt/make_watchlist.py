#!/usr/bin/env python3
"""make_watchlist.py OUT ID [THRESHOLD] [SUBJECTS] [MODEL]: a sealed watchlist file in match.h's
format for face-api's model (d 128, L2; MODEL: another model id in the header), with SUBJECTS made-up subjects S-0.. (not faces: for the CLI and
custody tests, which never match with it). What `vigilctl watchlist import --out` writes, without
needing the face model."""
import hashlib, struct, sys

out, wl_id = sys.argv[1], int(sys.argv[2])
threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
n = int(sys.argv[4]) if len(sys.argv) > 4 else 2
model = sys.argv[5] if len(sys.argv) > 5 else "face-api-1.7.15"
body = b"VGWLIST\0" + struct.pack("<II", 1, 64) + model.encode().ljust(32, b"\0")
body += struct.pack("<IIII", 128, 0, 1, n) + struct.pack("<If", wl_id, threshold)
for i in range(n):
    body += ("S-%d" % i).encode().ljust(64, b"\0") + struct.pack("<I", wl_id)
    body += struct.pack("<128f", *[((i * 7 + k * 3) % 11) / 100.0 for k in range(128)])
with open(out, "wb") as f:
    f.write(body + hashlib.sha256(body).digest())
