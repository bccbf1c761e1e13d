// Runs a model with ONNX Runtime (onnxruntime-node), the reference and speed anchor that tests
// and benchmarks compare Tessera with. It is never a dependency of the library.
//
//   node ort_run.js MODEL.onnx OUT_DIR [--threads N] [--repeat N] [--profile PREFIX]
//                   NAME=INPUT.npy ...
//
// Writes every output to OUT_DIR/<name with [^A-Za-z0-9._-] -> _>.npy and prints one JSON line
// with the median latency of the repeated runs. --profile turns on ONNX Runtime's profiler,
// which writes PREFIX_<date>.json: the kernel time of every node in every run. Needs NODE_PATH
// or a node_modules folder that holds onnxruntime-node.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const DTYPES = {'<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
                '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
                '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array], '|b1': ['bool', Uint8Array]};

function readNpy(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.slice(major === 1 ? 10 : 12, start).toString('latin1');
  const descr = header.match(/'descr': '([^']*)'/)[1];
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const [type, Ctor] = DTYPES[descr] || (() => { throw new Error(`${file}: dtype ${descr}`); })();
  const bytes = b.buffer.slice(b.byteOffset + start, b.byteOffset + b.length);
  let data = new Ctor(bytes);
  if (type === 'bool') data = Array.from(data, v => v !== 0);
  return new ort.Tensor(type, data, shape);
}

function writeNpy(file, t) {
  const descr = {float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1',
                 int8: '|i1', bool: '|b1'}[t.type];
  if (!descr) throw new Error(`cannot write dtype ${t.type}`);
  const dims = t.dims.join(', ') + (t.dims.length === 1 ? ',' : '');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  while ((10 + header.length + 1) % 64) header += ' ';
  header += '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  const data = t.type === 'bool' ? Buffer.from(Array.from(t.data, v => (v ? 1 : 0)))
                                 : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), data]));
}

(async () => {
  const args = process.argv.slice(2);
  const [model, outDir] = args;
  let threads = 1, repeat = 1, profile = null;
  const feeds = {};
  for (let i = 2; i < args.length; i++) {
    if (args[i] === '--threads') threads = Number(args[++i]);
    else if (args[i] === '--repeat') repeat = Number(args[++i]);
    else if (args[i] === '--profile') profile = args[++i];
    else {
      const eq = args[i].indexOf('=');
      feeds[args[i].slice(0, eq)] = readNpy(args[i].slice(eq + 1));
    }
  }
  const t0 = process.hrtime.bigint();
  const options = {intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential'};
  if (profile) Object.assign(options, {enableProfiling: true, profileFilePrefix: profile});
  const session = await ort.InferenceSession.create(model, options);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let result;
  const times = [];
  for (let r = 0; r < repeat; r++) {
    const s = process.hrtime.bigint();
    result = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  fs.mkdirSync(outDir, {recursive: true});
  for (const name of session.outputNames)
    writeNpy(path.join(outDir, name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy'), result[name]);
  times.sort((a, b) => a - b);
  const report = {load_ms: loadMs, median_ms: times[Math.floor(times.length / 2)],
                  min_ms: times[0], runs: repeat};
  if (profile) session.endProfiling();
  console.log(JSON.stringify(report));
})().catch(e => { console.error(`ort_run: ${e.message}`); process.exit(1); });
