#!/usr/bin/env node
// tools/demo-summary.js FACES.json [THRESHOLD]: what `make demo` prints from a `vigilctl faces
// --json`-shaped document: the faces found in each image, then which faces are the same person
// across images at the model's L2 threshold (0.6 for face-api's descriptor), the way the matcher
// will compare camera faces with a watchlist. Reads JSON only; needs no node modules.
'use strict';
const fs = require('fs');

const [file, thresholdArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: demo-summary.js FACES.json [THRESHOLD]');
  process.exit(2);
}
const threshold = thresholdArg ? Number(thresholdArg) : 0.6;
const doc = JSON.parse(fs.readFileSync(file, 'utf8'));

const l2 = (a, b) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));
const label = (img, i) => `${img.path.split('/').pop()}#${i + 1}`;

let total = 0;
console.log('image         size        faces  boxes (x,y w×h, score)');
for (const img of doc.images) {
  total += img.faces.length;
  const boxes = img.faces.map((f) => `${f.box.slice(0, 2).map(Math.round).join(',')} ${Math.round(f.box[2])}×${Math.round(f.box[3])} ${f.score.toFixed(2)}`);
  console.log(`${img.path.split('/').pop().padEnd(13)} ${`${img.width}x${img.height}`.padEnd(11)} ${String(img.faces.length).padStart(5)}  ${boxes.slice(0, 3).join('; ')}${boxes.length > 3 ? `; +${boxes.length - 3} more` : ''}`);
}

// Every face against every face in the other images: the closest one, and whether it passes.
const faces = doc.images.flatMap((img) => img.faces.map((f, i) => ({ img, i, d: f.descriptor })));
const pairs = [];
for (let a = 0; a < faces.length; a++) {
  for (let b = a + 1; b < faces.length; b++) {
    if (faces[a].img === faces[b].img) continue;
    const v = l2(faces[a].d, faces[b].d);
    if (v < threshold) pairs.push([label(faces[a].img, faces[a].i), label(faces[b].img, faces[b].i), v]);
  }
}
pairs.sort((x, y) => x[2] - y[2]);
console.log(`\n${total} faces in ${doc.images.length} images; ${pairs.length} cross-image pairs under L2 ${threshold} (same person):`);
for (const [x, y, v] of pairs) console.log(`  ${x.padEnd(15)} ~ ${y.padEnd(15)} L2 ${v.toFixed(3)}`);
