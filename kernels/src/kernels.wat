;; trainfleet's WebAssembly SIMD kernels: the parameter server's per-element hot loops.
;;
;; Compiled by scripts/build-kernels.mjs (wabt) into gen/kernels-wasm.ts; run
;; `npm run generate:kernels` after editing this file and commit both.
;;
;; Every kernel is the exact image of a JavaScript loop that stays in the TypeScript source
;; as the specification and the fallback path:
;;   average*         paramserver/src/aggregate.ts      averageInRankOrder
;;   anyNonFinite     paramserver/src/push-validation.ts checkFinite
;;   sgd, sgdMomentum, adam    paramserver/src/optimizer.ts
;;   encode*/decode*           dataplane/src/codec/half-precision.ts
;; and must give the same bits. The rules that make that hold:
;;   - WebAssembly never fuses a multiply and an add, and neither does JavaScript, so the
;;     same operations in the same order round the same way.
;;   - The optimizers compute in double (f64x2) exactly as JavaScript does, and round to
;;     float32 (f32x4.demote_f64x2_zero) exactly where JavaScript stores into a
;;     Float32Array or calls Math.fround; a value stored and read back is re-promoted.
;;   - float32 addition and division of float32 operands, done in double and then rounded,
;;     equal the float32 operation (53 >= 2*24 + 2 bits), so the average may use f32x4.
;;   - The 16-bit conversions are integer bit manipulation only (no float operation ever
;;     sees or makes a denormal), rounding half to even on the dropped bits exactly as the
;;     JavaScript does.
;;   - v128.const inside a loop is rebuilt by V8 on every iteration, so the loops take
;;     their constants from locals set up before them.
;;
;; Calling convention: pointers are byte offsets into the imported memory; `count` is a
;; number of elements and a multiple of 4 (the caller runs the JavaScript loop on the
;; tail of fewer than 4 elements). Alignment is never assumed.
(module
  ;; The process-wide memory (kernels/src/kernel-memory.ts). Shared, so that growing
  ;; it never detaches the ArrayBuffer under the JavaScript views of it.
  (import "env" "memory" (memory 1 65536 shared))

  ;; ------------------------------------------------------------------------------------
  ;; Average in rank order: out[i] = f32(f32(f32(c0[i] + c1[i]) + c2[i]) + ...) / n
  ;; ------------------------------------------------------------------------------------

  ;; Two ranks: out = f32(a + b) / 2.
  (func (export "average2") (param $a i32) (param $b i32) (param $out i32) (param $count i32)
    (local $i i32) (local $end i32) (local $two v128)
    (local.set $two (v128.const f32x4 2 2 2 2))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store
          (i32.add (local.get $out) (local.get $i))
          (f32x4.div
            (f32x4.add
              (v128.load (i32.add (local.get $a) (local.get $i)))
              (v128.load (i32.add (local.get $b) (local.get $i))))
            (local.get $two)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; Three ranks: out = f32(f32(a + b) + c) / 3.
  (func (export "average3") (param $a i32) (param $b i32) (param $c i32) (param $out i32) (param $count i32)
    (local $i i32) (local $end i32) (local $three v128)
    (local.set $three (v128.const f32x4 3 3 3 3))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store
          (i32.add (local.get $out) (local.get $i))
          (f32x4.div
            (f32x4.add
              (f32x4.add
                (v128.load (i32.add (local.get $a) (local.get $i)))
                (v128.load (i32.add (local.get $b) (local.get $i))))
              (v128.load (i32.add (local.get $c) (local.get $i))))
            (local.get $three)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; n >= 2 ranks: `table` holds n i32 pointers, rank 0 first. Each vector of four
  ;; elements is summed over the ranks in order before the next one is started, so memory
  ;; is read once, as the JavaScript loop does.
  (func (export "averageN") (param $table i32) (param $n i32) (param $out i32) (param $count i32)
    (local $i i32) (local $end i32) (local $rank i32) (local $tableEnd i32) (local $sum v128) (local $divisor v128)
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $tableEnd (i32.add (local.get $table) (i32.shl (local.get $n) (i32.const 2))))
    ;; n is a small integer: exact as a float32.
    (local.set $divisor (f32x4.splat (f32.convert_i32_u (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $sum (v128.load (i32.add (i32.load (local.get $table)) (local.get $i))))
        (local.set $rank (i32.add (local.get $table) (i32.const 4)))
        (block $summed
          (loop $add
            (br_if $summed (i32.ge_u (local.get $rank) (local.get $tableEnd)))
            (local.set $sum
              (f32x4.add
                (local.get $sum)
                (v128.load (i32.add (i32.load (local.get $rank)) (local.get $i)))))
            (local.set $rank (i32.add (local.get $rank) (i32.const 4)))
            (br $add)))
        (v128.store (i32.add (local.get $out) (local.get $i)) (f32x4.div (local.get $sum) (local.get $divisor)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; ------------------------------------------------------------------------------------
  ;; Finite check: 1 if any value is NaN or infinite, else 0.
  ;; ------------------------------------------------------------------------------------

  ;; The JavaScript's trick on four lanes: an all-ones exponent plus one carries into bit
  ;; 31, which no finite value's does; i32x4.bitmask collects the four bit 31s.
  (func (export "anyNonFinite") (param $ptr i32) (param $count i32) (result i32)
    (local $i i32) (local $end i32) (local $carry v128) (local $exponent v128) (local $exponentOne v128)
    (local.set $exponent (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
    (local.set $exponentOne (v128.const i32x4 0x00800000 0x00800000 0x00800000 0x00800000))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $carry
          (v128.or
            (local.get $carry)
            (i32x4.add
              (v128.and (v128.load (i32.add (local.get $ptr) (local.get $i))) (local.get $exponent))
              (local.get $exponentOne))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (i32.ne (i32x4.bitmask (local.get $carry)) (i32.const 0)))

  ;; ------------------------------------------------------------------------------------
  ;; Optimizers, two elements at a time in f64x2: v128.load64_zero reads two float32s,
  ;; f64x2.promote_low_f32x4 widens them to doubles (exactly), f32x4.demote_f64x2_zero
  ;; rounds the results to float32 and v128.store64_lane writes those two back. Each loop
  ;; body is written out in full: V8 does not inline calls between WebAssembly functions.
  ;; ------------------------------------------------------------------------------------

  ;; The updates read params and the state of the current version and write out and the
  ;; state of the next (a shard keeps a step's results apart until the step is whole);
  ;; an output may be its own input.

  ;; SGD without momentum: out[i] = params[i] - learningRate * gradient[i]
  (func (export "sgd") (param $params i32) (param $gradient i32) (param $out i32) (param $count i32) (param $learningRate f64)
    (local $i i32) (local $end i32) (local $lr v128)
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $lr (f64x2.splat (local.get $learningRate)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store64_lane 0 (i32.add (local.get $out) (local.get $i))
          (f32x4.demote_f64x2_zero
            (f64x2.sub
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $i))))
              (f64x2.mul
                (local.get $lr)
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $gradient) (local.get $i))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next))))

  ;; SGD with momentum:
  ;;   velocityOut[i] = momentum * velocity[i] + gradient[i]         (stored as float32)
  ;;   out[i] = params[i] - learningRate * fround(that velocity)
  (func (export "sgdMomentum") (param $params i32) (param $gradient i32) (param $velocity i32) (param $out i32) (param $velocityOut i32) (param $count i32) (param $learningRate f64) (param $momentum f64)
    (local $i i32) (local $end i32) (local $lr v128) (local $mu v128) (local $v v128)
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $lr (f64x2.splat (local.get $learningRate)))
    (local.set $mu (f64x2.splat (local.get $momentum)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; The new velocity, rounded to float32 (two lanes), stored ...
        (local.set $v
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (local.get $mu) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $velocity) (local.get $i)))))
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $gradient) (local.get $i)))))))
        (v128.store64_lane 0 (i32.add (local.get $velocityOut) (local.get $i)) (local.get $v))
        ;; ... and used rounded.
        (v128.store64_lane 0 (i32.add (local.get $out) (local.get $i))
          (f32x4.demote_f64x2_zero
            (f64x2.sub
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $i))))
              (f64x2.mul (local.get $lr) (f64x2.promote_low_f32x4 (local.get $v))))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next))))

  ;; Adam, in the JavaScript's order of operations:
  ;;   mOut[i] = beta1 * m[i] + (1 - beta1) * g                       (stored as float32)
  ;;   vOut[i] = beta2 * v[i] + (1 - beta2) * g * g                   (stored; ((1 - beta2) * g) * g)
  ;;   out[i] = params[i] - (lr * (mOut[i] / c1)) / (sqrt(vOut[i] / c2) + epsilon)
  ;; with mOut[i], vOut[i] read back as float32. 1 - beta and c1 = 1 - beta1^t, c2 = 1 - beta2^t
  ;; come from the caller, computed by the same JavaScript expressions.
  (func (export "adam")
    (param $params i32) (param $gradient i32) (param $mPtr i32) (param $vPtr i32) (param $out i32) (param $mOut i32) (param $vOut i32) (param $count i32)
    (param $learningRate f64) (param $beta1 f64) (param $oneMinusBeta1 f64) (param $beta2 f64) (param $oneMinusBeta2 f64)
    (param $correction1 f64) (param $correction2 f64) (param $epsilon f64)
    (local $i i32) (local $end i32)
    (local $lr v128) (local $b1 v128) (local $omb1 v128) (local $b2 v128) (local $omb2 v128) (local $c1 v128) (local $c2 v128) (local $eps v128)
    (local $g v128) (local $m v128) (local $v v128)
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $lr (f64x2.splat (local.get $learningRate)))
    (local.set $b1 (f64x2.splat (local.get $beta1)))
    (local.set $omb1 (f64x2.splat (local.get $oneMinusBeta1)))
    (local.set $b2 (f64x2.splat (local.get $beta2)))
    (local.set $omb2 (f64x2.splat (local.get $oneMinusBeta2)))
    (local.set $c1 (f64x2.splat (local.get $correction1)))
    (local.set $c2 (f64x2.splat (local.get $correction2)))
    (local.set $eps (f64x2.splat (local.get $epsilon)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $g (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $gradient) (local.get $i)))))
        ;; m and v as float32 (two lanes each), stored, then used as read back.
        (local.set $m
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (local.get $b1) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $mPtr) (local.get $i)))))
              (f64x2.mul (local.get $omb1) (local.get $g)))))
        (v128.store64_lane 0 (i32.add (local.get $mOut) (local.get $i)) (local.get $m))
        (local.set $v
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (local.get $b2) (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $vPtr) (local.get $i)))))
              (f64x2.mul (f64x2.mul (local.get $omb2) (local.get $g)) (local.get $g)))))
        (v128.store64_lane 0 (i32.add (local.get $vOut) (local.get $i)) (local.get $v))
        (v128.store64_lane 0 (i32.add (local.get $out) (local.get $i))
          (f32x4.demote_f64x2_zero
            (f64x2.sub
              (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $i))))
              (f64x2.div
                (f64x2.mul (local.get $lr) (f64x2.div (f64x2.promote_low_f32x4 (local.get $m)) (local.get $c1)))
                (f64x2.add
                  (f64x2.sqrt (f64x2.div (f64x2.promote_low_f32x4 (local.get $v)) (local.get $c2)))
                  (local.get $eps))))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next))))

  ;; ------------------------------------------------------------------------------------
  ;; bfloat16: the high half of a float32, rounded to nearest even; NaN becomes 0x7fc0.
  ;; Four elements at a time; the four 16-bit results are the low halves of i32 lanes,
  ;; all <= 0xffff, so i16x8.narrow_i32x4_u (which saturates) packs them exactly.
  ;; ------------------------------------------------------------------------------------

  ;; src: count float32s; dst: count uint16s.
  ;;   out = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16
  ;; The sum never wraps for a non-NaN x (at most 0xff800000 + 0x8000).
  (func (export "encodeBfloat16") (param $src i32) (param $dst i32) (param $count i32)
    (local $i i32) (local $end i32) (local $x v128) (local $h v128)
    (local $nan v128) (local $belowHalf v128) (local $one v128) (local $absMask v128) (local $infinity v128)
    (local.set $nan (v128.const i32x4 0x7fc0 0x7fc0 0x7fc0 0x7fc0))
    (local.set $belowHalf (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff))
    (local.set $one (v128.const i32x4 1 1 1 1))
    (local.set $absMask (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
    (local.set $infinity (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $src) (local.get $i))))
        (local.set $h
          (v128.bitselect
            (local.get $nan)
            (i32x4.shr_u
              (i32x4.add
                (i32x4.add (local.get $x) (local.get $belowHalf))
                (v128.and (i32x4.shr_u (local.get $x) (i32.const 16)) (local.get $one)))
              (i32.const 16))
            ;; NaN: |x| above infinity's pattern (both non-negative as signed i32).
            (i32x4.gt_s (v128.and (local.get $x) (local.get $absMask)) (local.get $infinity))))
        (v128.store64_lane 0
          (i32.add (local.get $dst) (i32.shr_u (local.get $i) (i32.const 1)))
          (i16x8.narrow_i32x4_u (local.get $h) (local.get $h)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; src: count uint16s; dst: count float32s. Each is h << 16.
  (func (export "decodeBfloat16") (param $src i32) (param $dst i32) (param $count i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store
          (i32.add (local.get $dst) (local.get $i))
          (i32x4.shl (v128.load16x4_u (i32.add (local.get $src) (i32.shr_u (local.get $i) (i32.const 1)))) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; ------------------------------------------------------------------------------------
  ;; float16 (IEEE binary16), round to nearest even, subnormals, overflow to infinity,
  ;; NaN kept as a quiet NaN with its sign: float32BitsToFloat16 / float16ToFloat32Bits.
  ;; Four elements at a time, integer operations only. The common cases are computed on
  ;; every lane and selected by masks; float16 subnormals take more work and are computed
  ;; only for the vectors that hold one. The constants are set up in locals before the
  ;; loops: V8 would otherwise rebuild each v128.const on every iteration.
  ;; ------------------------------------------------------------------------------------

  ;; src: count float32s; dst: count uint16s.
  (func (export "encodeFloat16") (param $src i32) (param $dst i32) (param $count i32)
    (local $i i32) (local $end i32)
    (local $x v128) (local $abs v128) (local $h v128) (local $subnormal v128) (local $m v128) (local $k v128)
    (local $absMask v128) (local $one v128) (local $low12 v128) (local $rebias v128) (local $infinity v128)
    (local $nanAbove v128) (local $quietBit v128) (local $normalFrom v128) (local $subnormalFrom v128) (local $subnormalSpan v128)
    (local $signBit v128) (local $mantissa v128) (local $implicit v128) (local $k0 v128) (local $highBytes v128)
    (local $powLow v128) (local $powHigh v128) (local $half12 v128)
    (local.set $absMask (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
    (local.set $one (v128.const i32x4 1 1 1 1))
    (local.set $low12 (v128.const i32x4 0xfff 0xfff 0xfff 0xfff))
    (local.set $rebias (v128.const i32x4 0x1c000 0x1c000 0x1c000 0x1c000))
    (local.set $infinity (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))
    (local.set $nanAbove (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
    (local.set $quietBit (v128.const i32x4 0x200 0x200 0x200 0x200))
    (local.set $normalFrom (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))
    (local.set $subnormalFrom (v128.const i32x4 0x33000000 0x33000000 0x33000000 0x33000000))
    (local.set $subnormalSpan (v128.const i32x4 0x05800000 0x05800000 0x05800000 0x05800000))
    (local.set $signBit (v128.const i32x4 0x8000 0x8000 0x8000 0x8000))
    (local.set $mantissa (v128.const i32x4 0x7fffff 0x7fffff 0x7fffff 0x7fffff))
    (local.set $implicit (v128.const i32x4 0x800000 0x800000 0x800000 0x800000))
    (local.set $k0 (v128.const i32x4 102 102 102 102))
    (local.set $highBytes (v128.const i32x4 0xffffff00 0xffffff00 0xffffff00 0xffffff00))
    ;; 2^k for k = 0..10, as its low byte and its high byte, indexed by k.
    (local.set $powLow (v128.const i8x16 1 2 4 8 16 32 64 128 0 0 0 0 0 0 0 0))
    (local.set $powHigh (v128.const i8x16 0 0 0 0 0 0 0 0 1 2 4 0 0 0 0 0))
    (local.set $half12 (v128.const i32x4 0x7ff 0x7ff 0x7ff 0x7ff))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $src) (local.get $i))))
        (local.set $abs (v128.and (local.get $x) (local.get $absMask)))

        ;; Normal (float32 exponent 113..142): h = (e << 10) | (mantissa >>> 13), rounded
        ;; on the 13 bits dropped. Adding 0xfff plus h's lowest bit carries into bit 13
        ;; exactly when rest > 0x1000, or rest == 0x1000 and h is odd; a carry out of the
        ;; mantissa bumps the exponent, up to infinity, as the JavaScript's h++ does.
        ;; Rebiasing the exponent from 127 to 15 is subtracting 112 << 10. Above the
        ;; float16 range (exponent >= 143, infinity and NaN too) this is above 0x7c00, so
        ;; the unsigned minimum with 0x7c00 makes it infinity. (Below the normal range it
        ;; wraps to a large number, replaced next.)
        (local.set $h
          (i32x4.min_u
            (i32x4.sub
              (i32x4.shr_u
                (i32x4.add
                  (i32x4.add (local.get $abs) (local.get $low12))
                  (v128.and (i32x4.shr_u (local.get $abs) (i32.const 13)) (local.get $one)))
                (i32.const 13))
              (local.get $rebias))
            (local.get $infinity)))
        ;; NaN (|x| above infinity's pattern): infinity with the quiet bit, 0x7e00.
        (local.set $h (v128.or (local.get $h) (v128.and (i32x4.gt_s (local.get $abs) (local.get $nanAbove)) (local.get $quietBit))))
        ;; Below the normal range (exponent <= 112, |x| < 2^-14): zero for now ...
        (local.set $h (v128.andnot (local.get $h) (i32x4.lt_s (local.get $abs) (local.get $normalFrom))))
        ;; ... and a subnormal where 2^-25 <= |x| < 2^-14 (exponent 102..112; below that
        ;; the value is at most half the smallest subnormal, and rounds to zero).
        (local.set $subnormal
          (i32x4.lt_u (i32x4.sub (local.get $abs) (local.get $subnormalFrom)) (local.get $subnormalSpan)))
        (if (v128.any_true (local.get $subnormal))
          (then
            ;; h = m >>> shift with the implicit 1 in m and shift = 126 - exponent in 14..24,
            ;; rounded to nearest even on the bits shifted out. SIMD has no per-lane shift
            ;; count, so instead:
            ;;  1. m' = (m >>> 12) | (any of m's low 12 bits set): bit 12 and below are
            ;;     below the rounding bit (shift - 1 >= 13) and only matter as a sticky bit,
            ;;     which m' keeps in its bit 0; ((m & 0xfff) + 0xfff) >>> 12 is that bit.
            ;;     m' < 2^12.
            ;;  2. t = m' << k with k = exponent - 102 = 24 - shift in 0..10, as m' * 2^k;
            ;;     i8x16.swizzle looks up 2^k's two bytes in tables indexed by k (the other
            ;;     bytes of the index are out of range, giving 0). t < 2^22. Now h = t >>> 12
            ;;     and the rest is t & 0xfff, its half 0x800.
            ;;  3. Round as for normals, on 12 bits: (t + 0x7ff + ((t >>> 12) & 1)) >>> 12.
            ;;     Rounding up from 0x3ff gives 0x400, the smallest normal, as the
            ;;     JavaScript's h++ does.
            (local.set $m (v128.or (v128.and (local.get $abs) (local.get $mantissa)) (local.get $implicit)))
            (local.set $m
              (v128.or
                (i32x4.shr_u (local.get $m) (i32.const 12))
                (i32x4.shr_u (i32x4.add (v128.and (local.get $m) (local.get $low12)) (local.get $low12)) (i32.const 12))))
            (local.set $k (v128.or (i32x4.sub (i32x4.shr_u (local.get $abs) (i32.const 23)) (local.get $k0)) (local.get $highBytes)))
            (local.set $m
              (i32x4.mul
                (local.get $m)
                (v128.or
                  (i8x16.swizzle (local.get $powLow) (local.get $k))
                  (i32x4.shl (i8x16.swizzle (local.get $powHigh) (local.get $k)) (i32.const 8)))))
            (local.set $h
              (v128.or
                (local.get $h)
                (v128.and
                  (local.get $subnormal)
                  (i32x4.shr_u
                    (i32x4.add
                      (i32x4.add (local.get $m) (local.get $half12))
                      (v128.and (i32x4.shr_u (local.get $m) (i32.const 12)) (local.get $one)))
                    (i32.const 12)))))))
        ;; The sign, in every case.
        (local.set $h (v128.or (local.get $h) (v128.and (i32x4.shr_u (local.get $x) (i32.const 16)) (local.get $signBit))))

        ;; Every lane is <= 0xffff: the saturating narrow packs the four exactly.
        (v128.store64_lane 0
          (i32.add (local.get $dst) (i32.shr_u (local.get $i) (i32.const 1)))
          (i16x8.narrow_i32x4_u (local.get $h) (local.get $h)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; src: count uint16s; dst: count float32s.
  (func (export "decodeFloat16") (param $src i32) (param $dst i32) (param $count i32)
    (local $i i32) (local $end i32)
    (local $h v128) (local $a v128) (local $f v128) (local $subnormal v128) (local $m v128) (local $exponent v128) (local $small v128)
    (local $magnitude v128) (local $specialAbove v128) (local $rebias v128) (local $normalFrom v128) (local $one v128)
    (local $subnormalSpan v128) (local $signBit v128)
    (local $below8 v128) (local $below128 v128) (local $below512 v128)
    (local $minus8 v128) (local $minus4 v128) (local $minus2 v128) (local $minus1 v128)
    (local.set $magnitude (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff))
    (local.set $specialAbove (v128.const i32x4 0x7bff 0x7bff 0x7bff 0x7bff))
    (local.set $rebias (v128.const i32x4 0x38000000 0x38000000 0x38000000 0x38000000))
    (local.set $normalFrom (v128.const i32x4 0x400 0x400 0x400 0x400))
    (local.set $one (v128.const i32x4 1 1 1 1))
    (local.set $subnormalSpan (v128.const i32x4 0x3ff 0x3ff 0x3ff 0x3ff))
    (local.set $signBit (v128.const i32x4 0x8000 0x8000 0x8000 0x8000))
    (local.set $below8 (v128.const i32x4 0x8 0x8 0x8 0x8))
    (local.set $below128 (v128.const i32x4 0x80 0x80 0x80 0x80))
    (local.set $below512 (v128.const i32x4 0x200 0x200 0x200 0x200))
    (local.set $minus8 (v128.const i32x4 0x4000000 0x4000000 0x4000000 0x4000000))
    (local.set $minus4 (v128.const i32x4 0x2000000 0x2000000 0x2000000 0x2000000))
    (local.set $minus2 (v128.const i32x4 0x1000000 0x1000000 0x1000000 0x1000000))
    (local.set $minus1 (v128.const i32x4 0x800000 0x800000 0x800000 0x800000))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        ;; Four float16s, zero-extended into i32 lanes.
        (local.set $h (v128.load16x4_u (i32.add (local.get $src) (i32.shr_u (local.get $i) (i32.const 1)))))
        (local.set $a (v128.and (local.get $h) (local.get $magnitude)))

        ;; Normal: exponent and mantissa move up 13 bits and the exponent is rebiased by
        ;; 127 - 15 = 112. Infinity and NaN (exponent 31, |h| > 0x7bff) go to exponent 255,
        ;; that is 112 more, keeping the mantissa (NaN payloads included).
        (local.set $f
          (i32x4.add
            (i32x4.add (i32x4.shl (local.get $a) (i32.const 13)) (local.get $rebias))
            (v128.and (i32x4.gt_s (local.get $a) (local.get $specialAbove)) (local.get $rebias))))
        ;; Exponent 0 (|h| < 0x400): zero for now ...
        (local.set $f (v128.andnot (local.get $f) (i32x4.lt_s (local.get $a) (local.get $normalFrom))))
        ;; ... and a subnormal where the mantissa m is not 0 (|h| in 1..0x3ff).
        (local.set $subnormal (i32x4.lt_u (i32x4.sub (local.get $a) (local.get $one)) (local.get $subnormalSpan)))
        (if (v128.any_true (local.get $subnormal))
          (then
            ;; Shift m left until bit 10 is set, one less exponent per shift from 2^-14, as
            ;; the JavaScript's loop does; here as a binary search by 8, 4, 2 and 1 with
            ;; constant shifts. With n shifts in all the result is
            ;; (m << 13) + ((112 - n) << 23): m's bit 10 lands on the exponent's bit 0,
            ;; making it 113 - n = (-14 - n) + 127.
            (local.set $m (local.get $a))
            (local.set $small (i32x4.lt_s (local.get $m) (local.get $below8)))
            (local.set $m (v128.bitselect (i32x4.shl (local.get $m) (i32.const 8)) (local.get $m) (local.get $small)))
            (local.set $exponent (i32x4.sub (local.get $rebias) (v128.and (local.get $small) (local.get $minus8))))
            (local.set $small (i32x4.lt_s (local.get $m) (local.get $below128)))
            (local.set $m (v128.bitselect (i32x4.shl (local.get $m) (i32.const 4)) (local.get $m) (local.get $small)))
            (local.set $exponent (i32x4.sub (local.get $exponent) (v128.and (local.get $small) (local.get $minus4))))
            (local.set $small (i32x4.lt_s (local.get $m) (local.get $below512)))
            (local.set $m (v128.bitselect (i32x4.shl (local.get $m) (i32.const 2)) (local.get $m) (local.get $small)))
            (local.set $exponent (i32x4.sub (local.get $exponent) (v128.and (local.get $small) (local.get $minus2))))
            (local.set $small (i32x4.lt_s (local.get $m) (local.get $normalFrom)))
            (local.set $m (v128.bitselect (i32x4.shl (local.get $m) (i32.const 1)) (local.get $m) (local.get $small)))
            (local.set $exponent (i32x4.sub (local.get $exponent) (v128.and (local.get $small) (local.get $minus1))))
            (local.set $f
              (v128.or
                (local.get $f)
                (v128.and
                  (local.get $subnormal)
                  (i32x4.add (i32x4.shl (local.get $m) (i32.const 13)) (local.get $exponent)))))))
        ;; The sign moves to bit 31.
        (v128.store
          (i32.add (local.get $dst) (local.get $i))
          (v128.or (local.get $f) (i32x4.shl (v128.and (local.get $h) (local.get $signBit)) (i32.const 16))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))
)
