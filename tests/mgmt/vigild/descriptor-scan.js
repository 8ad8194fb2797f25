#!/usr/bin/env node
// descriptor-scan.js FILE...: finds face descriptors in files, without knowing whose they are.
// A face-api.js descriptor is 128 float32 values, each small (|v| < 0.6 in practice) with a norm
// near 1.45 (measured on the golden photos' 22 faces: norms 1.40 to 1.51, |v| at most 0.46). Random or encrypted bytes
// almost never look like that: a float32 of random bits falls in (-0.6, 0.6) and is normal with
// probability about 1/4, so 128 in a row happen by chance once in 2^256 windows. Every byte offset
// is tried (descriptors need not be aligned). Prints "FILE OFFSET" for each file that holds one
// (the first window found) and exits 1 if any did, 0 if none.
'use strict';
const fs = require('fs');

const DIM = 128;
function firstDescriptor(b) {
  for (let phase = 0; phase < 4; phase++) {
    let run = 0, sumsq = 0;
    const vals = [];
    for (let off = phase; off + 4 <= b.length; off += 4) {
      const v = b.readFloatLE(off);
      const ok = Number.isFinite(v) && Math.abs(v) < 0.6 && (v === 0 || Math.abs(v) > 1e-6);
      if (!ok) {
        run = 0, sumsq = 0, vals.length = 0;
        continue;
      }
      vals.push(v);
      sumsq += v * v;
      if (++run > DIM) sumsq -= vals[vals.length - DIM - 1] ** 2;
      const zeros = vals.slice(-DIM).filter((x) => x === 0).length;
      if (run >= DIM && zeros < 8 && sumsq > 1.0 && sumsq < 4.0) return off - 4 * (DIM - 1);
    }
  }
  return -1;
}

let found = 0;
for (const path of process.argv.slice(2)) {
  let b;
  try {
    b = fs.readFileSync(path);
  } catch (e) {
    continue; // gone since it was listed
  }
  const off = firstDescriptor(b);
  if (off >= 0) {
    console.log(`${path} ${off}`);
    found++;
  }
}
process.exit(found ? 1 : 0);
