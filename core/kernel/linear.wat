;; The linear merge kernel in WebAssembly SIMD: out = b + s · a, a = Σk w_k · (m_k − b), over the elements
;; [lo, hi) of a chunk whose arrays all live in the imported (shared) memory. Float32 arithmetic throughout, as
;; PyTorch (and so mergekit) computes a merge, in the JavaScript kernel's order (core/merge/coefficients.ts):
;; for each model in turn d = f32(m − b), t = f32(w · d) (skipped for a uniform merge: w = 1), a = f32(a + t);
;; then out = f32(b + f32(s · a)). s and the weights arrive as float64 and are rounded to float32 once. Four
;; float32 lanes at a time, so the loop keeps up with memory where float64 lanes did not.
;;
;; Arguments (byte addresses in memory):
;;   out      the output, float32
;;   base     the base's float32 values; has_base = 0 for a merge without a base (b is then +0.0)
;;   models   K int32 addresses, one per model's float32 values
;;   weights  K float64 weights; weighted = 0 for a uniform merge (every coefficient the same, passed as
;;            `scale`): the weights are then 1.0 and the loop skips multiplying by them (x · 1 = x exactly)
;; The result is 1 when every accumulated a stayed finite. A NaN or ±Inf in any input makes some a non-finite,
;; so 1 means every input was finite; 0 means an input was not, or a sum overflowed float32 (the caller tells
;; the two apart with an exact check).
;;
;; Elements go sixteen at a time (four f32x4 accumulators), the last hi − lo mod 16 one at a time with the
;; same operations in scalar form.
;;
;; Regenerate core/kernel/linear_wasm_bytes.ts after changing this file: npm run wasm
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "linear")
    (param $out i32) (param $base i32) (param $has_base i32) (param $models i32) (param $weights i32)
    (param $weighted i32) (param $K i32) (param $lo i32) (param $hi i32) (param $scale f64)
    (result i32)
    (local $i i32) (local $end16 i32) (local $off i32) (local $k i32) (local $p i32)
    (local $w v128) (local $sv v128) (local $chk v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128)
    (local $ss f32) (local $ws f32) (local $bs f32) (local $as f32) (local $chks f32)
    (local.set $ss (f32.demote_f64 (local.get $scale)))
    (local.set $sv (f32x4.splat (local.get $ss)))
    (local.set $i (local.get $lo))
    (local.set $end16
      (i32.add (local.get $lo) (i32.and (i32.sub (local.get $hi) (local.get $lo)) (i32.const -16))))
    (block $blocks_done
      (loop $blocks
        (br_if $blocks_done (i32.ge_u (local.get $i) (local.get $end16)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (if (local.get $has_base)
          (then
            (local.set $p (i32.add (local.get $base) (local.get $off)))
            (local.set $b0 (v128.load (local.get $p)))
            (local.set $b1 (v128.load offset=16 (local.get $p)))
            (local.set $b2 (v128.load offset=32 (local.get $p)))
            (local.set $b3 (v128.load offset=48 (local.get $p))))
          (else
            (local.set $b0 (v128.const i32x4 0 0 0 0))
            (local.set $b1 (v128.const i32x4 0 0 0 0))
            (local.set $b2 (v128.const i32x4 0 0 0 0))
            (local.set $b3 (v128.const i32x4 0 0 0 0))))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $k (i32.const 0))
        (block $models_done
          (loop $each_model
            (br_if $models_done (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $p
              (i32.add (i32.load (i32.add (local.get $models) (i32.shl (local.get $k) (i32.const 2))))
                       (local.get $off)))
            ;; d = m − b, times w unless the merge is uniform (w = 1 then: the same bytes, one multiply fewer)
            (local.set $d0 (f32x4.sub (v128.load (local.get $p)) (local.get $b0)))
            (local.set $d1 (f32x4.sub (v128.load offset=16 (local.get $p)) (local.get $b1)))
            (local.set $d2 (f32x4.sub (v128.load offset=32 (local.get $p)) (local.get $b2)))
            (local.set $d3 (f32x4.sub (v128.load offset=48 (local.get $p)) (local.get $b3)))
            (if (local.get $weighted)
              (then
                (local.set $w (f32x4.splat (f32.demote_f64
                  (f64.load (i32.add (local.get $weights) (i32.shl (local.get $k) (i32.const 3)))))))
                (local.set $d0 (f32x4.mul (local.get $w) (local.get $d0)))
                (local.set $d1 (f32x4.mul (local.get $w) (local.get $d1)))
                (local.set $d2 (f32x4.mul (local.get $w) (local.get $d2)))
                (local.set $d3 (f32x4.mul (local.get $w) (local.get $d3)))))
            (local.set $a0 (f32x4.add (local.get $a0) (local.get $d0)))
            (local.set $a1 (f32x4.add (local.get $a1) (local.get $d1)))
            (local.set $a2 (f32x4.add (local.get $a2) (local.get $d2)))
            (local.set $a3 (f32x4.add (local.get $a3) (local.get $d3)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $each_model)))
        ;; a − a is 0 for a finite a and NaN otherwise; the sum stays 0 only while every a is finite
        (local.set $chk (f32x4.add (local.get $chk)
          (f32x4.add (f32x4.add (f32x4.sub (local.get $a0) (local.get $a0)) (f32x4.sub (local.get $a1) (local.get $a1)))
                     (f32x4.add (f32x4.sub (local.get $a2) (local.get $a2)) (f32x4.sub (local.get $a3) (local.get $a3))))))
        ;; out = f32(b + f32(s · a))
        (local.set $p (i32.add (local.get $out) (local.get $off)))
        (v128.store (local.get $p) (f32x4.add (local.get $b0) (f32x4.mul (local.get $sv) (local.get $a0))))
        (v128.store offset=16 (local.get $p) (f32x4.add (local.get $b1) (f32x4.mul (local.get $sv) (local.get $a1))))
        (v128.store offset=32 (local.get $p) (f32x4.add (local.get $b2) (f32x4.mul (local.get $sv) (local.get $a2))))
        (v128.store offset=48 (local.get $p) (f32x4.add (local.get $b3) (f32x4.mul (local.get $sv) (local.get $a3))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $blocks)))
    ;; the last elements, one at a time, with the same operations
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $hi)))
        (local.set $off (i32.shl (local.get $i) (i32.const 2)))
        (local.set $bs (f32.const 0))
        (if (local.get $has_base)
          (then (local.set $bs (f32.load (i32.add (local.get $base) (local.get $off))))))
        (local.set $as (f32.const 0))
        (local.set $k (i32.const 0))
        (block $tail_models_done
          (loop $tail_model
            (br_if $tail_models_done (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $p
              (i32.add (i32.load (i32.add (local.get $models) (i32.shl (local.get $k) (i32.const 2))))
                       (local.get $off)))
            (local.set $ws (f32.demote_f64
              (f64.load (i32.add (local.get $weights) (i32.shl (local.get $k) (i32.const 3))))))
            (local.set $as (f32.add (local.get $as)
              (f32.mul (local.get $ws) (f32.sub (f32.load (local.get $p)) (local.get $bs)))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $tail_model)))
        (local.set $chks (f32.add (local.get $chks) (f32.sub (local.get $as) (local.get $as))))
        (f32.store (i32.add (local.get $out) (local.get $off))
          (f32.add (local.get $bs) (f32.mul (local.get $ss) (local.get $as))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (i32.and
      (i32x4.all_true (f32x4.eq (local.get $chk) (v128.const i32x4 0 0 0 0)))
      (f32.eq (local.get $chks) (f32.const 0))))
)
