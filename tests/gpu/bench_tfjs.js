#!/usr/bin/env node
// The peer of bench_facenet.c: face-api.js 1.7.15 under tfjs-wasm (SIMD; one thread: tfjs never
// picks the threaded wasm in node) on the same pixels (vg-decode), same photos: SSD detection per
// frame and descriptor per aligned face crop, medians. Loads face-api as tools/oracle/faces.js.
//   node bench_tfjs.js ORACLE_DIR DECODER MODELS ROUNDS IMAGE...
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const [oracleDir, decoder, models, roundsArg, ...images] = process.argv.slice(2);
const req = (m) => require(require.resolve(m, { paths: [oracleDir] }));
for (const k of ['log', 'info', 'warn', 'debug']) console[k] = () => {};

function median(v) { v.sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; }

(async () => {
  const faceapi = req('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const tf = req('@tensorflow/tfjs');
  const wasm = req('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json', { paths: [oracleDir] })), 'dist') + path.sep);
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(models);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(models);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(models);
  const opts = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-bench-'));
  const inputs = [];
  for (const image of images) {
    const out = path.join(tmp, 'img.rgb');
    const r = spawnSync(decoder, [image, out], { encoding: 'utf8' });
    const info = JSON.parse(r.stdout.trim().split('\n')[0]);
    const rgb = fs.readFileSync(out);
    inputs.push(tf.tensor3d(Int32Array.from(rgb), [info.height, info.width, 3], 'int32'));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const det = [], desc = [];
  const rounds = Number(roundsArg) || 1;
  for (let k = 0; k <= rounds; k++) {   // round 0 warms up
    for (const input of inputs) {
      let t0 = performance.now();
      await faceapi.detectAllFaces(input, opts);
      if (k) det.push(performance.now() - t0);
      const res = await faceapi.detectAllFaces(input, opts).withFaceLandmarks();
      const crops = await faceapi.extractFaceTensors(input, res.map((r) => r.landmarks.align(null, { useDlibAlignment: true })));
      for (const c of crops) {
        t0 = performance.now();
        await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(c);
        if (k) desc.push(performance.now() - t0);
        c.dispose();
      }
    }
  }
  const dm = median(det), em = median(desc);
  console.error = () => {};
  process.stdout.write(`tfjs-wasm threads=1 detect_ms_per_frame=${dm.toFixed(2)} frames_per_s=${(1e3 / dm).toFixed(2)} descriptor_ms=${em.toFixed(2)} descriptors_per_s=${(1e3 / em).toFixed(1)}\n`);
})().catch((e) => { process.stderr.write(`bench_tfjs: ${e.message}\n`); process.exit(1); });
