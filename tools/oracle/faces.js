#!/usr/bin/env node
// Vigil face-net oracle: runs face-api.js (@vladmandic/face-api 1.7.15) on tfjs 4.22.0's wasm
// backend and prints the same JSON document as `vigilctl faces --json` (DESIGN.md "Contracts").
//
//   node tools/oracle/faces.js --decoder PATH --models DIR IMAGE...
//
// The oracle never decodes images itself: it runs the decoder program (`vg-decode IMAGE OUT.rgb`,
// which writes packed 8-bit RGB and prints {"path","width","height","rgb_sha256"} on stdout) and
// feeds those very bytes to tfjs. face-api floors every face crop, so one pixel level of decoder
// difference can move a descriptor by 0.05-0.4 (face-nets.md section 10); sharing the decoder
// with the C pipeline removes that variable, and rgb_sha256 in the output proves it.
//
// Pipeline (fixed, it is what the golden file records): SSD MobileNetV1 (minConfidence 0.5,
// maxResults 100) -> 68-point landmark net (full, not tiny) -> recognition net (128-d).
//
// Exit status: 0 all images processed; 1 at least one image was refused by the decoder (one
// line on stderr each; those images are left out of the output, the others still processed);
// 2 bad usage, missing model files or a decoder that cannot be started (nothing on stdout).
// Nothing but the JSON document ever goes to stdout.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawnSync } = require('child_process');

const USAGE = 'usage: node faces.js --decoder PATH --models DIR IMAGE...';

// stdout carries only the JSON document. tfjs and face-api log banners and warnings through
// console.log/info/warn; send all console output to stderr before loading them.
{
  const toStderr = (...args) => process.stderr.write(require('util').format(...args) + '\n');
  console.log = toStderr;
  console.info = toStderr;
  console.warn = toStderr;
  console.debug = toStderr;
}

function parseArgs(argv) {
  const opts = { decoder: null, models: null, images: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--decoder' || a === '--models') {
      if (i + 1 >= argv.length) return null;
      opts[a.slice(2)] = argv[++i];
    } else if (a === '--') {
      opts.images.push(...argv.slice(i + 1));
      break;
    } else if (a.startsWith('--')) {
      return null;
    } else {
      opts.images.push(a);
    }
  }
  if (!opts.decoder || !opts.models || opts.images.length === 0) return null;
  return opts;
}

// Runs the decoder on one image. Returns {width, height, rgb, sha256} or throws an Error whose
// message is a one-line reason.
function decode(decoder, image, tmpdir) {
  const out = path.join(tmpdir, 'img.rgb');
  fs.rmSync(out, { force: true });
  const r = spawnSync(decoder, [image, out], { encoding: 'utf8', maxBuffer: 1 << 20 });
  // Not being able to start the decoder at all is not this image's fault: stop (exit 2).
  if (r.error) throw Object.assign(new Error(`cannot run decoder ${decoder}: ${r.error.message}`), { fatal: true });
  if (r.status !== 0) {
    const why = (r.stderr || '').trim().split('\n')[0] ||
      (r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`);
    throw new Error(`decoder refused it: ${why}`);
  }
  let info;
  try {
    info = JSON.parse(r.stdout.trim().split('\n')[0]);
  } catch (e) {
    throw new Error(`decoder printed no JSON line: ${JSON.stringify(r.stdout.slice(0, 80))}`);
  }
  const { width, height } = info;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new Error(`decoder reported bad size ${width}x${height}`);
  const rgb = fs.readFileSync(out);
  if (rgb.length !== width * height * 3)
    throw new Error(`decoder wrote ${rgb.length} bytes, expected ${width}x${height}x3`);
  // Hash what we actually feed to tfjs, and hold the decoder to its own report.
  const sha256 = crypto.createHash('sha256').update(rgb).digest('hex');
  if (info.rgb_sha256 !== sha256)
    throw new Error(`decoder reported rgb_sha256 ${info.rgb_sha256}, bytes hash to ${sha256}`);
  return { width, height, rgb, sha256 };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!opts) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  for (const m of ['ssd_mobilenetv1_model', 'face_landmark_68_model', 'face_recognition_model']) {
    if (!fs.existsSync(path.join(opts.models, `${m}-weights_manifest.json`))) {
      process.stderr.write(`faces.js: ${opts.models}: no ${m}-weights_manifest.json\n`);
      return 2;
    }
  }

  // Load order matters: face-api's node-wasm bundle requires @tensorflow/tfjs and
  // @tensorflow/tfjs-backend-wasm from this folder's node_modules, so `tf` and `wasm` below are
  // the very instances face-api uses.
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const tf = require('@tensorflow/tfjs');
  const wasm = require('@tensorflow/tfjs-backend-wasm');

  // Load the .wasm binaries from node_modules, never from a CDN. A string prefix is a directory
  // (trailing slash required: tfjs concatenates prefix + file name); in node, emscripten reads it
  // with fs. In node tfjs 4.22 never picks the threaded binary (WASM_HAS_MULTITHREAD_SUPPORT is
  // false under IS_NODE), so this runs tfjs-backend-wasm-simd.wasm on one thread: deterministic.
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  wasm.setWasmPaths(wasmDir);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  await tf.ready();

  await faceapi.nets.ssdMobilenetv1.loadFromDisk(opts.models);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(opts.models);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(opts.models);
  const detectorOptions = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 });

  const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-oracle-'));
  const images = [];
  let failed = false;
  try {
    for (const image of opts.images) {
      let img;
      try {
        img = decode(opts.decoder, image, tmpdir);
      } catch (e) {
        if (e.fatal) {
          process.stderr.write(`faces.js: ${e.message}\n`);
          return 2;
        }
        process.stderr.write(`faces.js: ${image}: ${e.message}\n`);
        failed = true;
        continue;
      }
      // int32 HWC tensor, as tf.node.decodeImage would give: face-api's tensor path pads to
      // square, resizes bilinearly and casts to float itself (face-nets.md section 3).
      const input = tf.tensor3d(Int32Array.from(img.rgb), [img.height, img.width, 3], 'int32');
      let results;
      try {
        results = await faceapi
          .detectAllFaces(input, detectorOptions)
          .withFaceLandmarks()
          .withFaceDescriptors();
      } finally {
        input.dispose();
      }
      images.push({
        path: image,
        width: img.width,
        height: img.height,
        rgb_sha256: img.sha256,
        faces: results.map((r) => {
          const b = r.detection.box;
          return {
            box: [b.x, b.y, b.width, b.height],
            score: r.detection.score,
            landmarks: r.landmarks.positions.map((p) => [p.x, p.y]),
            descriptor: Array.from(r.descriptor),
          };
        }),
      });
    }
  } finally {
    fs.rmSync(tmpdir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify({ images }) + '\n');
  return failed ? 1 : 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => {
    process.stderr.write(`faces.js: ${e && e.stack ? e.stack.split('\n')[0] : e}\n`);
    process.exitCode = 1;
  },
);
