// Checks a native install: loads its tfjs-node with this checkout's @tensorflow/tfjs-core, starts the
// 'tensorflow' backend, runs one matrix product and prints {"device":"gpu"|"cpu"} (the binding's own word).
//   node infra/native/probe.js <repo root> <native folder>/node/node_modules/@tensorflow/tfjs-node
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS run by install.sh, before any build */
const [repo, source] = process.argv.slice(2);
process.env.TF_FORCE_GPU_ALLOW_GROWTH ??= 'true';
process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
const tf = require(require.resolve('@tensorflow/tfjs-core', { paths: [repo] }));
require(source);
tf.setBackend('tensorflow').then(
  (ok) => {
    if (!ok || tf.getBackend() !== 'tensorflow') throw new Error("the 'tensorflow' backend did not start");
    const y = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([1, 1], [2, 1])).dataSync();
    if (y[0] !== 3 || y[1] !== 7) throw new Error(`a 2x2 product gave [${y}], expected [3,7]`);
    const gpu = tf.backend().binding.isUsingGpuDevice();
    console.log(JSON.stringify({ device: gpu ? 'gpu' : 'cpu', tensorflow: tf.backend().binding.TF_Version }));
  },
  (e) => {
    throw e;
  },
);
