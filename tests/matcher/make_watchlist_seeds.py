#!/usr/bin/env python3
"""Write the seed inputs of the watchlist fuzz target (tests/fuzz/corpus/watchlist/): small valid
files for the fuzz target's matcher (model "fuzz", d 16, L2) and a few near misses. Deterministic."""
import hashlib, os, struct, sys

def wl_file(model=b"fuzz", d=16, metric=0, wls=((1, 0.6),), entries=((b"alice", 1),), version=1, seal=True):
    body = b"VGWLIST\0" + struct.pack("<II", version, 64) + model.ljust(32, b"\0")
    body += struct.pack("<IIII", d, metric, len(wls), len(entries))
    for i, t in wls:
        body += struct.pack("<If", i, t)
    for n, (subj, w) in enumerate(entries):
        body += subj.ljust(64, b"\0") + struct.pack("<I", w)
        body += struct.pack("<%df" % d, *[((n * 7 + k * 3) % 11) / 10.0 for k in range(d)])
    return body + (hashlib.sha256(body).digest() if seal else b"\0" * 32)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../fuzz/corpus/watchlist")
seeds = {
    "one": wl_file(),
    "three": wl_file(wls=((1, 0.6), (9, 0.4)), entries=((b"a", 1), (b"b" * 64, 9), (b"a", 9))),
    "empty": wl_file(wls=(), entries=()),
    "watchlists-only": wl_file(wls=((1, 0.5), (2, 0.5)), entries=()),
    "wrong-model": wl_file(model=b"face-api-1.7.15"),
    "wrong-d": wl_file(d=32),
    "unsealed": wl_file(seal=False),
    "v2": wl_file(version=2),
}
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
