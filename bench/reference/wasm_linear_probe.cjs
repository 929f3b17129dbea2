/* global require, process, console, Buffer, WebAssembly, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS probe run with node */
/**
 * Probe, not part of the build: the linear kernel (uniform coefficients: TA, weight averaging) written as a
 * WebAssembly SIMD loop in f64x2 lanes, next to the JavaScript kernel (core/merge/coefficients.ts) on the same
 * in-memory chunk, per CPU second, with memcpy for scale. Each partial sum is rounded to float32 (demote, then
 * promote), as the JavaScript kernel does, so the bytes are the same; the probe checks that.
 *
 *   npm run build && npm install --prefix /tmp/wabt wabt@1.0.37
 *   WABT=/tmp/wabt/node_modules/wabt node bench/reference/wasm_linear_probe.cjs
 */
const WAT = `
(module
  (memory (export "mem") 2048)
  ;; out[i] = f32(b + scale * a), a = f32(a + w*(m_k[i]-b)) over k, two elements at a time in f64 lanes
  (func (export "linear") (param $base i32) (param $models i32) (param $K i32) (param $n i32) (param $out i32) (param $w f64) (param $scale f64)
    (local $i i32) (local $k i32) (local $b v128) (local $a v128) (local $m v128) (local $wv v128) (local $sv v128) (local $off i32)
    (local.set $wv (f64x2.splat (local.get $w)))
    (local.set $sv (f64x2.splat (local.get $scale)))
    (block $done
      (loop $el
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $b (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $base) (local.get $off)))))
        (local.set $a (f64x2.splat (f64.const 0)))
        (local.set $k (i32.const 0))
        (block $kd
          (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $m (f64x2.promote_low_f32x4 (v128.load64_zero
              (i32.add (i32.load (i32.add (local.get $models) (i32.shl (local.get $k) (i32.const 2)))) (local.get $off)))))
            (local.set $a (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero
              (f64x2.add (local.get $a) (f64x2.mul (local.get $wv) (f64x2.sub (local.get $m) (local.get $b)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl)))
        (v128.store64_lane 0 (i32.add (local.get $out) (local.get $off))
          (f32x4.demote_f64x2_zero (f64x2.add (local.get $b) (f64x2.mul (local.get $sv) (local.get $a)))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $el))))
)
`;
const path = require('node:path');
const { linearMergeInto } = require(path.join(__dirname, '..', '..', 'dist', 'core', 'merge', 'coefficients.js'));

async function main() {
  const wabt = await require(process.env.WABT ?? 'wabt')();
  const { buffer } = wabt.parseWat('linear.wat', WAT, { simd: true }).toBinary({});
  const { instance } = await WebAssembly.instantiate(buffer);
  const mem = instance.exports.mem;
  const K = 8;
  const n = 1 << 20;
  const f32 = (off, len) => new Float32Array(mem.buffer, off, len);
  const base = f32(0, n);
  for (let i = 0; i < n; i++) base[i] = Math.sin(i);
  const models = [];
  for (let k = 0; k < K; k++) {
    const m = f32((k + 1) * n * 4, n);
    for (let i = 0; i < n; i++) m[i] = base[i] + 0.01 * Math.cos(i * (k + 1));
    models.push(m);
  }
  const outPtr = (K + 1) * n * 4;
  const ptrs = new Int32Array(mem.buffer, (K + 2) * n * 4, K);
  for (let k = 0; k < K; k++) ptrs[k] = (k + 1) * n * 4;
  const outJs = new Float32Array(n);
  const acc = new Float32Array(n);
  const touched = n * 4 * (K + 2);
  const gbs = (fn) => {
    let best = Infinity;
    for (let r = 0; r < 6; r++) {
      const t = process.cpuUsage();
      fn();
      const u = process.cpuUsage(t);
      best = Math.min(best, (u.user + u.system) / 1e6);
    }
    return touched / best / 1e9;
  };
  const src = Buffer.alloc(touched / 2);
  const dst = Buffer.alloc(touched / 2);
  const memcpy = gbs(() => src.copy(dst));
  for (const scale of [0.3, 1 / K]) {
    const js = gbs(() => linearMergeInto(outJs, acc, base, models, new Array(K).fill(scale)));
    const wasm = gbs(() => instance.exports.linear(0, (K + 2) * n * 4, K, n, outPtr, 1, scale));
    const same = Buffer.from(outJs.buffer).equals(Buffer.from(mem.buffer, outPtr, n * 4));
    console.log(JSON.stringify({ scale, memcpy, js, wasm_f64x2: wasm, byte_identical: same }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
