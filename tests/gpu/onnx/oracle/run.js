// The ONNX importer's oracle: onnxruntime-web's wasm backend, run in node, on input tensors the
// C test wrote (float32, NCHW, one image after another), one image per run (models often fix
// the batch at 1). Writes the outputs, float32, one image after another.
//   node run.js MODEL.onnx INPUTS.f32 N C H W OUTPUTS.f32
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-web'));

async function main() {
  const [model, inputs, n, c, h, w, outputs] = process.argv.slice(2);
  const dims = [1, +c, +h, +w];
  const per = dims[1] * dims[2] * dims[3];
  const bytes = fs.readFileSync(inputs);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  if (all.length !== +n * per) throw new Error(`${inputs}: ${all.length} floats, expected ${+n * per}`);
  ort.env.wasm.numThreads = 1;   // deterministic, and no worker threads in node
  const session = await ort.InferenceSession.create(model, {executionProviders: ['wasm']});
  const chunks = [];
  for (let i = 0; i < +n; i++) {
    const x = new ort.Tensor('float32', all.slice(i * per, (i + 1) * per), dims);
    const r = await session.run({[session.inputNames[0]]: x});
    const y = r[session.outputNames[0]].data;
    chunks.push(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  }
  fs.writeFileSync(outputs, Buffer.concat(chunks));
}
main().catch((e) => { console.error(`onnx oracle: ${e.message}`); process.exit(1); });
