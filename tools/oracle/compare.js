#!/usr/bin/env node
// Compares two `vigilctl faces --json` documents (DESIGN.md "Contracts"), e.g. the golden file
// against a fresh oracle run, or later against the C pipeline with looser tolerances.
//
//   node tools/oracle/compare.js EXPECTED.json ACTUAL.json
//        [--box-px T] [--landmark-px T] [--descriptor-l2 T]
//
// Images are matched by the basename of `path`; width, height and rgb_sha256 must be equal (a
// different rgb_sha256 means the two sides saw different pixels and nothing else is worth
// comparing). Faces are paired greedily by box IoU, not by order, so that two implementations
// may list faces differently; each pair must have every box corner within --box-px, every
// landmark (Euclidean) within --landmark-px and descriptors within --descriptor-l2 (Euclidean).
//
// Defaults are for the oracle against its own golden file. On one machine the oracle is
// bit-identical from run to run; the tolerances leave room for another x86 CPU or a node whose
// wasm lacks SIMD (tfjs then runs the scalar kernels; measured on the six demo photos: max box
// 1.1e-4 px, landmark 8.7e-5 px, descriptors bit-identical because the floored crops did not
// move), while still catching any real change: one pixel level of input or a one-pixel crop
// shift moves descriptors by 1e-2 or more.
//
// Prints one line per image and a final summary line; exit 0 when everything matches, 1 on any
// mismatch (one line per failure), 2 on bad usage or unreadable input.
'use strict';

const fs = require('fs');
const path = require('path');

const USAGE = 'usage: node compare.js EXPECTED.json ACTUAL.json ' +
  '[--box-px T] [--landmark-px T] [--descriptor-l2 T]';

function parseArgs(argv) {
  const opts = { files: [], boxPx: 1e-3, landmarkPx: 1e-3, descriptorL2: 1e-4 };
  const flags = { '--box-px': 'boxPx', '--landmark-px': 'landmarkPx', '--descriptor-l2': 'descriptorL2' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in flags) {
      const v = Number(argv[++i]);
      if (!(i < argv.length) || !Number.isFinite(v) || v < 0) return null;
      opts[flags[a]] = v;
    } else if (a.startsWith('--')) {
      return null;
    } else {
      opts.files.push(a);
    }
  }
  return opts.files.length === 2 ? opts : null;
}

function load(file) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!doc || !Array.isArray(doc.images)) throw new Error(`${file}: no "images" array`);
  const byName = new Map();
  for (const img of doc.images) {
    const name = path.basename(String(img.path));
    if (byName.has(name)) throw new Error(`${file}: two images named ${name}`);
    byName.set(name, img);
  }
  return byName;
}

function iou(a, b) {
  const ix = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

// Greedy pairing: repeatedly take the pair with the highest IoU among unpaired faces. Pairs with
// IoU 0 are not paired (they cannot be the same face).
function pairFaces(exp, act) {
  const cands = [];
  exp.forEach((e, i) => act.forEach((a, j) => {
    const v = iou(e.box, a.box);
    if (v > 0) cands.push([v, i, j]);
  }));
  cands.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]);
  const usedE = new Set(), usedA = new Set(), pairs = [];
  for (const [, i, j] of cands) {
    if (usedE.has(i) || usedA.has(j)) continue;
    usedE.add(i); usedA.add(j);
    pairs.push([i, j]);
  }
  return pairs;
}

// Largest corner distance, per axis: |x0-x0'|, |y0-y0'|, |x1-x1'|, |y1-y1'|.
function boxDiff(a, b) {
  return Math.max(
    Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]),
    Math.abs(a[0] + a[2] - (b[0] + b[2])), Math.abs(a[1] + a[3] - (b[1] + b[3])));
}

function landmarkDiff(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== 68 || b.length !== 68) return Infinity;
  let m = 0;
  for (let k = 0; k < 68; k++) m = Math.max(m, Math.hypot(a[k][0] - b[k][0], a[k][1] - b[k][1]));
  return m;
}

function l2(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== 128 || b.length !== 128) return Infinity;
  let s = 0;
  for (let k = 0; k < 128; k++) s += (a[k] - b[k]) ** 2;
  return Math.sqrt(s);
}

// NaN must fail a check, so test "not within" rather than "greater than".
const within = (v, t) => v <= t;
// Failure messages must show differences far below the display precision of the summary lines.
const fmt = (v) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4));

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!opts) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  let expected, actual;
  try {
    expected = load(opts.files[0]);
    actual = load(opts.files[1]);
  } catch (e) {
    process.stderr.write(`compare.js: ${e.message}\n`);
    return 2;
  }

  const failures = [];
  const fail = (msg) => { failures.push(msg); console.log(`FAIL ${msg}`); };
  let nImages = 0, nFaces = 0;
  const worst = { box: 0, lm: 0, desc: 0 };

  for (const name of actual.keys())
    if (!expected.has(name)) fail(`${name}: in actual only`);

  for (const [name, e] of expected) {
    const a = actual.get(name);
    if (!a) { fail(`${name}: missing from actual`); continue; }
    nImages++;
    if (e.width !== a.width || e.height !== a.height) {
      fail(`${name}: size ${a.width}x${a.height}, expected ${e.width}x${e.height}`);
      continue;
    }
    if (e.rgb_sha256 !== a.rgb_sha256) {
      fail(`${name}: rgb_sha256 ${a.rgb_sha256}, expected ${e.rgb_sha256} (different pixels)`);
      continue;
    }
    const ef = e.faces || [], af = a.faces || [];
    if (ef.length !== af.length) fail(`${name}: ${af.length} faces, expected ${ef.length}`);
    const pairs = pairFaces(ef, af);
    if (pairs.length < Math.min(ef.length, af.length))
      fail(`${name}: only ${pairs.length} faces overlap an expected face`);
    let mBox = 0, mLm = 0, mDesc = 0;
    for (const [i, j] of pairs) {
      const x = ef[i], y = af[j];
      const db = boxDiff(x.box, y.box), dl = landmarkDiff(x.landmarks, y.landmarks);
      const dd = l2(x.descriptor, y.descriptor);
      // Name the face by its expected box so a failure can be found in the golden file.
      const where = `${name}: face ${i} at [${x.box.map((v) => v.toFixed(1)).join(',')}]`;
      if (!within(db, opts.boxPx)) fail(`${where}: box corner off by ${fmt(db)} px > ${opts.boxPx}`);
      if (!within(dl, opts.landmarkPx)) fail(`${where}: landmark off by ${fmt(dl)} px > ${opts.landmarkPx}`);
      if (!within(dd, opts.descriptorL2)) fail(`${where}: descriptor L2 ${fmt(dd)} > ${opts.descriptorL2}`);
      mBox = Math.max(mBox, db); mLm = Math.max(mLm, dl); mDesc = Math.max(mDesc, dd);
    }
    nFaces += pairs.length;
    worst.box = Math.max(worst.box, mBox); worst.lm = Math.max(worst.lm, mLm);
    worst.desc = Math.max(worst.desc, mDesc);
    console.log(`${name}: ${af.length} faces, max box ${mBox.toFixed(4)} px, ` +
      `max landmark ${mLm.toFixed(4)} px, max descriptor L2 ${mDesc.toFixed(6)}`);
  }

  const verdict = failures.length ? `FAILED (${failures.length} failures)` : 'OK';
  console.log(`${verdict}: ${nImages} images, ${nFaces} paired faces, max box ${worst.box.toExponential(2)} px, ` +
    `max landmark ${worst.lm.toExponential(2)} px, max descriptor L2 ${worst.desc.toExponential(2)} ` +
    `(tolerances ${opts.boxPx} px, ${opts.landmarkPx} px, ${opts.descriptorL2})`);
  return failures.length ? 1 : 0;
}

process.exitCode = main();
