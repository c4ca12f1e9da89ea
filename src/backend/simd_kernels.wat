;; advkit's SIMD kernels for the tfjs wasm backend, in WebAssembly text.
;;
;; The module imports the wasm backend's own memory, so the kernels read and write tensors
;; where they live on the backend's heap: every pointer below is a byte offset into that heap.
;; `npm run build:wasm` assembles this file (with wabt) into simd_kernels.generated.ts; a test
;; checks that the committed bytes are this file's.
;;
;; Semantics follow the tfjs cpu backend exactly (the parity tests compare against it):
;; - relu_grad: out = y > 0 ? dy : 0 (tfjs: dy * step(x), and y = relu(x) > 0 iff x > 0).
;; - clamp_grad: out = 0 < y < hi ? dy : 0, the gradient of min(max(x, 0), hi) taken from its
;;   output y (ReLU6 with hi = 6; tfjs passes the gradient where 0 < x <= hi, which differs only
;;   where x is exactly hi).
;; - depthwise_filter_grad: dW[p, q, c] = sum over b, i, j of
;;   x[b, i*sh + p - pt, j*sw + q - pl, c] * dy[b, i, j, c] (channel multiplier 1, c a multiple of
;;   4, taps outside x are zero), added into dW (zeroed by the caller) in row-major order of
;;   (b, i, j), the order of the cpu backend's sums; f32 products and sums.
;; - maxpool2x2_grad: 2x2 windows, stride 2, no padding, NHWC, C a multiple of 4. The gradient
;;   goes to the first maximum of each window in row-major order (a running maximum from
;;   -Infinity, replaced only by a strictly greater value, so NaNs never win). Every input
;;   element of a window is written (gradient or 0); rows and columns outside all windows (odd
;;   H or W) are left to the caller. With relu = 1 the input is a ReLU output and the ReLU's
;;   own gradient is applied too: a window whose maximum is not > 0 passes nothing.
;; - col_sum: out[c] = sum over rows of x[r, c] (a bias gradient), cols a multiple of 4,
;;   accumulated in f64 in `scratch` (8 bytes per column), then rounded once to f32.
;; - conv_filter_grad: dW[p, q, ci, co] = sum over b, i, j of
;;   x[b, i*sh + p - pt, j*sw + q - pl, ci] * dy[b, i, j, co] (taps outside x are zero),
;;   co a multiple of 16, f32 accumulation in registers over one image row of dy at a time,
;;   added into dW (which the caller zeroes). For layers with few input channels, whose
;;   filter gradient is a very long, very thin product.
;; - col2im: dx[b, i*sh + p - pt, j*sw + q - pl, c] += cols[(b, i, j), (p, q, c)] over the patch
;;   matrix cols [n*ho*wo, kh*kw*ci] (positions outside dx dropped); dx zeroed by the caller.
;;   In row-major order of cols, the order of the cpu backend's sums.
;; - min_max: out = max(a, b) as std::max (a unless a < b) or, with min = 1, min(a, b) as
;;   std::min (a unless b < a): stock tfjs-wasm's Maximum and Minimum to the bit (a NaN in a is
;;   kept, one in b is not; -0 and 0 keep a). With sa (sb) = 1, a (b) is one float for all n.
;; - maxpool_grad: any window, stride and padding (NHWC, C a multiple of 4): for each window in
;;   row-major order of (b, i, j), the first maximum in row-major order of the window's taps
;;   inside x (a running maximum from -Infinity replaced only by a strictly greater value) gets
;;   dy added: dx[k] += dy (f32), dx zeroed by the caller; with relu = 1 a window whose maximum
;;   is not > 0 passes nothing. The cpu backend's semantics and order of sums.
(module
  (import "env" "memory" (memory 1))

  (func (export "relu_grad") (param $dy i32) (param $y i32) (param $out i32) (param $n i32)
    (local $i i32) (local $n4 i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $end) (i32.const -16)))
    (block $simd_done
      (loop $simd
        (br_if $simd_done (i32.ge_u (local.get $i) (local.get $n4)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (v128.and
            (v128.load (i32.add (local.get $dy) (local.get $i)))
            (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $i))) (v128.const f32x4 0 0 0 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $simd)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (select
            (f32.load (i32.add (local.get $dy) (local.get $i)))
            (f32.const 0)
            (f32.gt (f32.load (i32.add (local.get $y) (local.get $i))) (f32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))

  (func (export "clamp_grad") (param $dy i32) (param $y i32) (param $out i32) (param $n i32) (param $hi f32)
    (local $i i32) (local $n4 i32) (local $end i32) (local $vhi v128) (local $v v128)
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $end) (i32.const -16)))
    (block $simd_done
      (loop $simd
        (br_if $simd_done (i32.ge_u (local.get $i) (local.get $n4)))
        (local.set $v (v128.load (i32.add (local.get $y) (local.get $i))))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (v128.and
            (v128.load (i32.add (local.get $dy) (local.get $i)))
            (v128.and
              (f32x4.gt (local.get $v) (v128.const f32x4 0 0 0 0))
              (f32x4.lt (local.get $v) (local.get $vhi)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $simd)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (select
            (f32.load (i32.add (local.get $dy) (local.get $i)))
            (f32.const 0)
            (i32.and
              (f32.gt (f32.load (i32.add (local.get $y) (local.get $i))) (f32.const 0))
              (f32.lt (f32.load (i32.add (local.get $y) (local.get $i))) (local.get $hi)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))

  (func (export "depthwise_filter_grad")
    (param $x i32) (param $dy i32) (param $dw i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $ho i32) (param $wo i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $r i32) (local $s i32)
    (local $cb i32) (local $k i32) (local $xp i32) (local $gp i32) (local $wp i32)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $gp (local.get $dy))
    (block $b_done (loop $b_loop
      (br_if $b_done (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $i (i32.const 0))
      (block $i_done (loop $i_loop
        (br_if $i_done (i32.ge_u (local.get $i) (local.get $ho)))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_loop
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $wo)))
          (local.set $p (i32.const 0))
          (block $p_done (loop $p_loop
            (br_if $p_done (i32.ge_u (local.get $p) (local.get $kh)))
            (local.set $r (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $pt)))
            (if (i32.and (i32.ge_s (local.get $r) (i32.const 0)) (i32.lt_s (local.get $r) (local.get $h)))
              (then
                (local.set $q (i32.const 0))
                (block $q_done (loop $q_loop
                  (br_if $q_done (i32.ge_u (local.get $q) (local.get $kw)))
                  (local.set $s (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $q)) (local.get $pl)))
                  (if (i32.and (i32.ge_s (local.get $s) (i32.const 0)) (i32.lt_s (local.get $s) (local.get $w)))
                    (then
                      (local.set $xp (i32.add (local.get $x)
                        (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $s)) (local.get $cb))))
                      (local.set $wp (i32.add (local.get $dw) (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cb))))
                      (local.set $k (i32.const 0))
                      (block $k_done (loop $k_loop
                        (br_if $k_done (i32.ge_u (local.get $k) (local.get $cb)))
                        (v128.store (i32.add (local.get $wp) (local.get $k))
                          (f32x4.add
                            (v128.load (i32.add (local.get $wp) (local.get $k)))
                            (f32x4.mul
                              (v128.load (i32.add (local.get $xp) (local.get $k)))
                              (v128.load (i32.add (local.get $gp) (local.get $k))))))
                        (local.set $k (i32.add (local.get $k) (i32.const 16)))
                        (br $k_loop)))))
                  (local.set $q (i32.add (local.get $q) (i32.const 1)))
                  (br $q_loop)))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $p_loop)))
          (local.set $gp (i32.add (local.get $gp) (local.get $cb)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $j_loop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $i_loop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $b_loop))))

  (func (export "maxpool2x2_grad")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $ho i32) (param $wo i32)
    (param $relu i32)
    (local $b i32) (local $i i32) (local $j i32) (local $k i32)
    (local $cb i32) (local $rowb i32) (local $p i32) (local $g i32)
    (local $xp i32) (local $dp i32)
    (local $m v128) (local $floor v128) (local $gv v128)
    (local $va v128) (local $vb v128) (local $vc v128) (local $vd v128)
    (local $ta v128) (local $tb v128) (local $tc v128) (local $td v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowb (i32.mul (local.get $w) (local.get $cb)))
    (local.set $floor
      (select (result v128)
        (v128.const f32x4 0 0 0 0)
        (v128.const f32x4 -inf -inf -inf -inf)
        (local.get $relu)))
    (local.set $g (local.get $dy))
    (local.set $b (i32.const 0))
    (block $b_done
      (loop $b_loop
        (br_if $b_done (i32.ge_u (local.get $b) (local.get $n)))
        (local.set $i (i32.const 0))
        (block $i_done
          (loop $i_loop
            (br_if $i_done (i32.ge_u (local.get $i) (local.get $ho)))
            ;; p: byte offset of the window's top-left element in x and dx
            (local.set $p
              (i32.mul
                (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $i) (i32.const 1)))
                (local.get $rowb)))
            (local.set $j (i32.const 0))
            (block $j_done
              (loop $j_loop
                (br_if $j_done (i32.ge_u (local.get $j) (local.get $wo)))
                (local.set $k (i32.const 0))
                (block $k_done
                  (loop $k_loop
                    (br_if $k_done (i32.ge_u (local.get $k) (local.get $cb)))
                    (local.set $xp (i32.add (local.get $x) (i32.add (local.get $p) (local.get $k))))
                    (local.set $va (v128.load (local.get $xp)))
                    (local.set $vb (v128.load (i32.add (local.get $xp) (local.get $cb))))
                    (local.set $vc (v128.load (i32.add (local.get $xp) (local.get $rowb))))
                    (local.set $vd (v128.load (i32.add (i32.add (local.get $xp) (local.get $rowb)) (local.get $cb))))
                    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
                    (local.set $ta (f32x4.gt (local.get $va) (local.get $m)))
                    (local.set $m (v128.bitselect (local.get $va) (local.get $m) (local.get $ta)))
                    (local.set $tb (f32x4.gt (local.get $vb) (local.get $m)))
                    (local.set $m (v128.bitselect (local.get $vb) (local.get $m) (local.get $tb)))
                    (local.set $tc (f32x4.gt (local.get $vc) (local.get $m)))
                    (local.set $m (v128.bitselect (local.get $vc) (local.get $m) (local.get $tc)))
                    (local.set $td (f32x4.gt (local.get $vd) (local.get $m)))
                    (local.set $m (v128.bitselect (local.get $vd) (local.get $m) (local.get $td)))
                    ;; the last strictly greater value wins: a needs no later update, and so on
                    (local.set $ta (v128.andnot (v128.andnot (v128.andnot (local.get $ta) (local.get $tb)) (local.get $tc)) (local.get $td)))
                    (local.set $tb (v128.andnot (v128.andnot (local.get $tb) (local.get $tc)) (local.get $td)))
                    (local.set $tc (v128.andnot (local.get $tc) (local.get $td)))
                    (local.set $gv
                      (v128.and
                        (v128.load (local.get $g))
                        (f32x4.gt (local.get $m) (local.get $floor))))
                    (local.set $dp (i32.add (local.get $dx) (i32.add (local.get $p) (local.get $k))))
                    (v128.store (local.get $dp) (v128.and (local.get $gv) (local.get $ta)))
                    (v128.store (i32.add (local.get $dp) (local.get $cb)) (v128.and (local.get $gv) (local.get $tb)))
                    (v128.store (i32.add (local.get $dp) (local.get $rowb)) (v128.and (local.get $gv) (local.get $tc)))
                    (v128.store (i32.add (i32.add (local.get $dp) (local.get $rowb)) (local.get $cb)) (v128.and (local.get $gv) (local.get $td)))
                    (local.set $g (i32.add (local.get $g) (i32.const 16)))
                    (local.set $k (i32.add (local.get $k) (i32.const 16)))
                    (br $k_loop)))
                (local.set $p (i32.add (local.get $p) (i32.shl (local.get $cb) (i32.const 1))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $j_loop)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $i_loop)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $b_loop))))

  (func (export "col_sum") (param $x i32) (param $out i32) (param $scratch i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $k i32) (local $cb i32) (local $row i32) (local $v v128) (local $a i32)
    (local.set $cb (i32.shl (local.get $cols) (i32.const 2)))
    ;; zero the f64 accumulators
    (local.set $k (i32.const 0))
    (block $z_done
      (loop $z
        (br_if $z_done (i32.ge_u (local.get $k) (local.get $cols)))
        (f64.store (i32.add (local.get $scratch) (i32.shl (local.get $k) (i32.const 3))) (f64.const 0))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $z)))
    (local.set $row (local.get $x))
    (local.set $r (i32.const 0))
    (block $r_done
      (loop $r_loop
        (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $k (i32.const 0))
        (block $k_done
          (loop $k_loop
            (br_if $k_done (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $v (v128.load (i32.add (local.get $row) (local.get $k))))
            ;; accumulator address: scratch + 2 * (byte offset of the column)
            (local.set $a (i32.add (local.get $scratch) (i32.shl (local.get $k) (i32.const 1))))
            (v128.store (local.get $a)
              (f64x2.add (v128.load (local.get $a)) (f64x2.promote_low_f32x4 (local.get $v))))
            (v128.store offset=16 (local.get $a)
              (f64x2.add (v128.load offset=16 (local.get $a))
                (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $k_loop)))
        (local.set $row (i32.add (local.get $row) (local.get $cb)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $r_loop)))
    (local.set $k (i32.const 0))
    (block $o_done
      (loop $o
        (br_if $o_done (i32.ge_u (local.get $k) (local.get $cols)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $k) (i32.const 2)))
          (f32.demote_f64 (f64.load (i32.add (local.get $scratch) (i32.shl (local.get $k) (i32.const 3))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $o))))

  (func (export "conv_filter_grad")
    (param $x i32) (param $dy i32) (param $dw i32)
    (param $n i32) (param $h i32) (param $w i32) (param $ci i32)
    (param $ho i32) (param $wo i32) (param $co i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $p i32) (local $q i32) (local $c i32) (local $o i32)
    (local $b i32) (local $i i32) (local $j i32) (local $r i32) (local $s i32)
    (local $xrow i32) (local $dyp i32) (local $dwp i32) (local $cob i32)
    (local $xv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $cob (i32.shl (local.get $co) (i32.const 2)))
    (local.set $p (i32.const 0))
    (block $p_done (loop $p_loop
      (br_if $p_done (i32.ge_u (local.get $p) (local.get $kh)))
      (local.set $q (i32.const 0))
      (block $q_done (loop $q_loop
        (br_if $q_done (i32.ge_u (local.get $q) (local.get $kw)))
        (local.set $c (i32.const 0))
        (block $c_done (loop $c_loop
          (br_if $c_done (i32.ge_u (local.get $c) (local.get $ci)))
          ;; dW row of this tap: ((p*kw + q)*ci + c)*co floats
          (local.set $dwp (i32.add (local.get $dw)
            (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $ci)) (local.get $c)) (local.get $cob))))
          (local.set $o (i32.const 0))
          (block $o_done (loop $o_loop
            (br_if $o_done (i32.ge_u (local.get $o) (local.get $cob)))
            (local.set $a0 (v128.const f32x4 0 0 0 0))
            (local.set $a1 (v128.const f32x4 0 0 0 0))
            (local.set $a2 (v128.const f32x4 0 0 0 0))
            (local.set $a3 (v128.const f32x4 0 0 0 0))
            (local.set $b (i32.const 0))
            (block $b_done (loop $b_loop
              (br_if $b_done (i32.ge_u (local.get $b) (local.get $n)))
              (local.set $i (i32.const 0))
              (block $i_done (loop $i_loop
                (br_if $i_done (i32.ge_u (local.get $i) (local.get $ho)))
                (local.set $r (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $pt)))
                (if (i32.lt_u (local.get $r) (local.get $h))
                  (then
                    ;; x + ((b*h + r)*w)*ci + c floats
                    (local.set $xrow (i32.add (local.get $x) (i32.shl
                      (i32.add (i32.mul (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $ci)) (local.get $c))
                      (i32.const 2))))
                    ;; dy + ((b*ho + i)*wo)*co floats + o bytes
                    (local.set $dyp (i32.add (i32.add (local.get $dy) (local.get $o)) (i32.mul
                      (i32.mul (i32.add (i32.mul (local.get $b) (local.get $ho)) (local.get $i)) (local.get $wo)) (local.get $cob))))
                    (local.set $j (i32.const 0))
                    (block $j_done (loop $j_loop
                      (br_if $j_done (i32.ge_u (local.get $j) (local.get $wo)))
                      (local.set $s (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $q)) (local.get $pl)))
                      (if (i32.lt_u (local.get $s) (local.get $w))
                        (then
                          (local.set $xv (v128.load32_splat (i32.add (local.get $xrow) (i32.shl (i32.mul (local.get $s) (local.get $ci)) (i32.const 2)))))
                          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (v128.load (local.get $dyp)))))
                          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $dyp)))))
                          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (v128.load offset=32 (local.get $dyp)))))
                          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (v128.load offset=48 (local.get $dyp)))))))
                      (local.set $dyp (i32.add (local.get $dyp) (local.get $cob)))
                      (local.set $j (i32.add (local.get $j) (i32.const 1)))
                      (br $j_loop)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $i_loop)))
              (local.set $b (i32.add (local.get $b) (i32.const 1)))
              (br $b_loop)))
            (v128.store (i32.add (local.get $dwp) (local.get $o)) (f32x4.add (v128.load (i32.add (local.get $dwp) (local.get $o))) (local.get $a0)))
            (v128.store offset=16 (i32.add (local.get $dwp) (local.get $o)) (f32x4.add (v128.load offset=16 (i32.add (local.get $dwp) (local.get $o))) (local.get $a1)))
            (v128.store offset=32 (i32.add (local.get $dwp) (local.get $o)) (f32x4.add (v128.load offset=32 (i32.add (local.get $dwp) (local.get $o))) (local.get $a2)))
            (v128.store offset=48 (i32.add (local.get $dwp) (local.get $o)) (f32x4.add (v128.load offset=48 (i32.add (local.get $dwp) (local.get $o))) (local.get $a3)))
            (local.set $o (i32.add (local.get $o) (i32.const 64)))
            (br $o_loop)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $c_loop)))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $q_loop)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $p_loop))))

  (func (export "col2im")
    (param $cols i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $ci i32)
    (param $ho i32) (param $wo i32) (param $kh i32) (param $kw i32)
    (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $c i32)
    (local $r i32) (local $s i32) (local $k i32) (local $base i32) (local $a i32)
    (local.set $k (local.get $cols))
    (local.set $b (i32.const 0))
    (block $b_done (loop $b_loop
      (br_if $b_done (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $i (i32.const 0))
      (block $i_done (loop $i_loop
        (br_if $i_done (i32.ge_u (local.get $i) (local.get $ho)))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_loop
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $wo)))
          (local.set $p (i32.const 0))
          (block $p_done (loop $p_loop
            (br_if $p_done (i32.ge_u (local.get $p) (local.get $kh)))
            (local.set $r (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $pt)))
            (local.set $q (i32.const 0))
            (block $q_done (loop $q_loop
              (br_if $q_done (i32.ge_u (local.get $q) (local.get $kw)))
              (local.set $s (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $q)) (local.get $pl)))
              (if (i32.and (i32.lt_u (local.get $r) (local.get $h)) (i32.lt_u (local.get $s) (local.get $w)))
                (then
                  (local.set $base (i32.add (local.get $dx) (i32.shl
                    (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $s)) (local.get $ci))
                    (i32.const 2))))
                  (local.set $c (i32.const 0))
                  ;; four channels at a time, then the rest one by one
                  (block $v_done (loop $v_loop
                    (br_if $v_done (i32.gt_u (i32.add (local.get $c) (i32.const 4)) (local.get $ci)))
                    (local.set $a (i32.add (local.get $base) (i32.shl (local.get $c) (i32.const 2))))
                    (v128.store (local.get $a)
                      (f32x4.add (v128.load (local.get $a)) (v128.load (i32.add (local.get $k) (i32.shl (local.get $c) (i32.const 2))))))
                    (local.set $c (i32.add (local.get $c) (i32.const 4)))
                    (br $v_loop)))
                  (block $c_done (loop $c_loop
                    (br_if $c_done (i32.ge_u (local.get $c) (local.get $ci)))
                    (local.set $a (i32.add (local.get $base) (i32.shl (local.get $c) (i32.const 2))))
                    (f32.store (local.get $a)
                      (f32.add (f32.load (local.get $a)) (f32.load (i32.add (local.get $k) (i32.shl (local.get $c) (i32.const 2))))))
                    (local.set $c (i32.add (local.get $c) (i32.const 1)))
                    (br $c_loop)))))
              (local.set $k (i32.add (local.get $k) (i32.shl (local.get $ci) (i32.const 2))))
              (local.set $q (i32.add (local.get $q) (i32.const 1)))
              (br $q_loop)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $p_loop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $j_loop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $i_loop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $b_loop))))

  ;; Two column sums at once, accumulated in f64: acc[0..cols) += Σ_r a[r, c] and
  ;; acc[cols..2cols) += Σ_r a[r, c]·b[r, c] over a [rows, cols] pair (batch norm's Σx and Σx²,
  ;; or its gradient's Σdy and Σdy·x). acc is 2·cols f64, zeroed here; cols a multiple of 4.
  (func (export "col_sum2") (param $a i32) (param $b i32) (param $acc i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $k i32) (local $cb i32) (local $ra i32) (local $rb i32)
    (local $va v128) (local $vp v128) (local $s i32) (local $q i32) (local $hi v128)
    (local.set $cb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $k (i32.const 0))
    (block $z_done
      (loop $z
        (br_if $z_done (i32.ge_u (local.get $k) (i32.shl (local.get $cols) (i32.const 1))))
        (f64.store (i32.add (local.get $acc) (i32.shl (local.get $k) (i32.const 3))) (f64.const 0))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $z)))
    (local.set $ra (local.get $a))
    (local.set $rb (local.get $b))
    (local.set $r (i32.const 0))
    (block $r_done
      (loop $r_loop
        (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $k (i32.const 0))
        (block $k_done
          (loop $k_loop
            (br_if $k_done (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $va (v128.load (i32.add (local.get $ra) (local.get $k))))
            (local.set $vp (f32x4.mul (local.get $va) (v128.load (i32.add (local.get $rb) (local.get $k)))))
            ;; f64 accumulators of this quad: sums at acc + 2k, products at acc + 2k + 8·cols
            (local.set $s (i32.add (local.get $acc) (i32.shl (local.get $k) (i32.const 1))))
            (local.set $q (i32.add (local.get $s) (i32.shl (local.get $cb) (i32.const 1))))
            (local.set $hi (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $va) (local.get $va)))
            (v128.store (local.get $s) (f64x2.add (v128.load (local.get $s)) (f64x2.promote_low_f32x4 (local.get $va))))
            (v128.store offset=16 (local.get $s) (f64x2.add (v128.load offset=16 (local.get $s)) (f64x2.promote_low_f32x4 (local.get $hi))))
            (local.set $hi (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $vp) (local.get $vp)))
            (v128.store (local.get $q) (f64x2.add (v128.load (local.get $q)) (f64x2.promote_low_f32x4 (local.get $vp))))
            (v128.store offset=16 (local.get $q) (f64x2.add (v128.load offset=16 (local.get $q)) (f64x2.promote_low_f32x4 (local.get $hi))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $k_loop)))
        (local.set $ra (i32.add (local.get $ra) (local.get $cb)))
        (local.set $rb (i32.add (local.get $rb) (local.get $cb)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $r_loop))))

  ;; Per-column affine map of a pair: out[r, c] = a[r, c]·p[c] + (b[r, c] − m[c])·q[c] + t[c],
  ;; with coef = [p, q, t, m] (four cols-long f32 vectors). Batch norm's forward
  ;; (y = (x − mean)·gamma·rstd + beta) and its input gradient (dx = A·dy + (x − mean)·B + C) are
  ;; each one pass. cols a multiple of 4; out may alias a or b.
  (func (export "col_affine2") (param $a i32) (param $b i32) (param $out i32) (param $coef i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $k i32) (local $cb i32) (local $off i32) (local $c i32)
    (local.set $cb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $off (i32.const 0))
    (local.set $r (i32.const 0))
    (block $r_done
      (loop $r_loop
        (br_if $r_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $k (i32.const 0))
        (block $k_done
          (loop $k_loop
            (br_if $k_done (i32.ge_u (local.get $k) (local.get $cb)))
            (local.set $c (i32.add (local.get $coef) (local.get $k)))
            (v128.store (i32.add (local.get $out) (i32.add (local.get $off) (local.get $k)))
              (f32x4.add
                (f32x4.add
                  (f32x4.mul (v128.load (i32.add (local.get $a) (i32.add (local.get $off) (local.get $k)))) (v128.load (local.get $c)))
                  (f32x4.mul
                    (f32x4.sub (v128.load (i32.add (local.get $b) (i32.add (local.get $off) (local.get $k))))
                      (v128.load (i32.add (local.get $c) (i32.mul (local.get $cb) (i32.const 3)))))
                    (v128.load (i32.add (local.get $c) (local.get $cb)))))
                (v128.load (i32.add (local.get $c) (i32.shl (local.get $cb) (i32.const 1))))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $k_loop)))
        (local.set $off (i32.add (local.get $off) (local.get $cb)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $r_loop))))

  ;; Depthwise conv input gradient (channel multiplier 1) as a scatter: for every dy position
  ;; (b, i, j) and tap (p, q) that lands inside the input, dx[b, i·sh + p − pt, j·sw + q − pl, :]
  ;; += dy[b, i, j, :] · w[p, q, :], four channels at a time, then the rest one by one. A strided
  ;; layer thus never multiplies the zeros of a stride-dilated dy. dx is zeroed by the caller.
  (func (export "depthwise_scatter")
    (param $dy i32) (param $wt i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $ch i32)
    (param $ho i32) (param $wo i32) (param $kh i32) (param $kw i32)
    (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32)
    (local $b i32) (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $c i32)
    (local $r i32) (local $s i32) (local $g i32) (local $base i32) (local $tap i32) (local $a i32) (local $cb i32)
    (local.set $cb (i32.shl (local.get $ch) (i32.const 2)))
    (local.set $g (local.get $dy))
    (local.set $b (i32.const 0))
    (block $b_done (loop $b_loop
      (br_if $b_done (i32.ge_u (local.get $b) (local.get $n)))
      (local.set $i (i32.const 0))
      (block $i_done (loop $i_loop
        (br_if $i_done (i32.ge_u (local.get $i) (local.get $ho)))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_loop
          (br_if $j_done (i32.ge_u (local.get $j) (local.get $wo)))
          (local.set $p (i32.const 0))
          (block $p_done (loop $p_loop
            (br_if $p_done (i32.ge_u (local.get $p) (local.get $kh)))
            (local.set $r (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $pt)))
            (local.set $q (i32.const 0))
            (block $q_done (loop $q_loop
              (br_if $q_done (i32.ge_u (local.get $q) (local.get $kw)))
              (local.set $s (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $q)) (local.get $pl)))
              (if (i32.and (i32.lt_u (local.get $r) (local.get $h)) (i32.lt_u (local.get $s) (local.get $w)))
                (then
                  (local.set $base (i32.add (local.get $dx) (i32.mul
                    (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $s))
                    (local.get $cb))))
                  (local.set $tap (i32.add (local.get $wt) (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cb))))
                  (local.set $c (i32.const 0))
                  (block $v_done (loop $v_loop
                    (br_if $v_done (i32.gt_u (i32.add (local.get $c) (i32.const 16)) (local.get $cb)))
                    (local.set $a (i32.add (local.get $base) (local.get $c)))
                    (v128.store (local.get $a)
                      (f32x4.add (v128.load (local.get $a))
                        (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $c))) (v128.load (i32.add (local.get $tap) (local.get $c))))))
                    (local.set $c (i32.add (local.get $c) (i32.const 16)))
                    (br $v_loop)))
                  (block $c_done (loop $c_loop
                    (br_if $c_done (i32.ge_u (local.get $c) (local.get $cb)))
                    (local.set $a (i32.add (local.get $base) (local.get $c)))
                    (f32.store (local.get $a)
                      (f32.add (f32.load (local.get $a))
                        (f32.mul (f32.load (i32.add (local.get $g) (local.get $c))) (f32.load (i32.add (local.get $tap) (local.get $c))))))
                    (local.set $c (i32.add (local.get $c) (i32.const 4)))
                    (br $c_loop)))))
              (local.set $q (i32.add (local.get $q) (i32.const 1)))
              (br $q_loop)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $p_loop)))
          (local.set $g (i32.add (local.get $g) (local.get $cb)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $j_loop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $i_loop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $b_loop))))

  (func (export "min_max") (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $sa i32) (param $sb i32) (param $min i32)
    (local $i i32) (local $n4 i32) (local $end i32) (local $va v128) (local $vb v128) (local $x f32) (local $y f32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $end) (i32.const -16)))
    (if (local.get $sa) (then (local.set $va (v128.load32_splat (local.get $a)))))
    (if (local.get $sb) (then (local.set $vb (v128.load32_splat (local.get $b)))))
    (block $simd_done
      (loop $simd
        (br_if $simd_done (i32.ge_u (local.get $i) (local.get $n4)))
        (if (i32.eqz (local.get $sa)) (then (local.set $va (v128.load (i32.add (local.get $a) (local.get $i))))))
        (if (i32.eqz (local.get $sb)) (then (local.set $vb (v128.load (i32.add (local.get $b) (local.get $i))))))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (if (result v128) (local.get $min)
            (then (f32x4.pmin (local.get $va) (local.get $vb)))
            (else (f32x4.pmax (local.get $va) (local.get $vb)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $simd)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (f32.load (i32.add (local.get $a) (i32.mul (local.get $i) (i32.eqz (local.get $sa))))))
        (local.set $y (f32.load (i32.add (local.get $b) (i32.mul (local.get $i) (i32.eqz (local.get $sb))))))
        (f32.store (i32.add (local.get $out) (local.get $i))
          (select (local.get $y) (local.get $x)
            (if (result i32) (local.get $min)
              (then (f32.lt (local.get $y) (local.get $x)))
              (else (f32.lt (local.get $x) (local.get $y))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))

  (func (export "maxpool_grad")
    (param $x i32) (param $dy i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32) (param $ho i32) (param $wo i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $pt i32) (param $pl i32) (param $relu i32)
    (local $b i32) (local $i i32) (local $j i32) (local $k i32) (local $r i32) (local $s i32)
    (local $r0 i32) (local $r1 i32) (local $s0 i32) (local $s1 i32)
    (local $cb i32) (local $g i32) (local $off i32) (local $at i32)
    (local $m v128) (local $where v128) (local $v v128) (local $t v128) (local $gv v128) (local $floor v128)
    (local.set $cb (i32.shl (local.get $c) (i32.const 2)))
    (local.set $floor
      (select (result v128)
        (v128.const f32x4 0 0 0 0)
        (v128.const f32x4 -inf -inf -inf -inf)
        (local.get $relu)))
    (local.set $g (local.get $dy))
    (local.set $b (i32.const 0))
    (block $b_done
      (loop $b_loop
        (br_if $b_done (i32.ge_u (local.get $b) (local.get $n)))
        (local.set $i (i32.const 0))
        (block $i_done
          (loop $i_loop
            (br_if $i_done (i32.ge_u (local.get $i) (local.get $ho)))
            ;; rows r0..r1 of the window inside x
            (local.set $r0 (i32.sub (i32.mul (local.get $i) (local.get $sh)) (local.get $pt)))
            (local.set $r1 (i32.add (local.get $r0) (local.get $kh)))
            (if (i32.lt_s (local.get $r0) (i32.const 0)) (then (local.set $r0 (i32.const 0))))
            (if (i32.gt_s (local.get $r1) (local.get $h)) (then (local.set $r1 (local.get $h))))
            (local.set $j (i32.const 0))
            (block $j_done
              (loop $j_loop
                (br_if $j_done (i32.ge_u (local.get $j) (local.get $wo)))
                (local.set $s0 (i32.sub (i32.mul (local.get $j) (local.get $sw)) (local.get $pl)))
                (local.set $s1 (i32.add (local.get $s0) (local.get $kw)))
                (if (i32.lt_s (local.get $s0) (i32.const 0)) (then (local.set $s0 (i32.const 0))))
                (if (i32.gt_s (local.get $s1) (local.get $w)) (then (local.set $s1 (local.get $w))))
                (local.set $k (i32.const 0))
                (block $k_done
                  (loop $k_loop
                    (br_if $k_done (i32.ge_u (local.get $k) (local.get $cb)))
                    (local.set $m (v128.const f32x4 -inf -inf -inf -inf))
                    (local.set $where (v128.const i32x4 -1 -1 -1 -1))
                    (local.set $r (local.get $r0))
                    (block $r_done
                      (loop $r_loop
                        (br_if $r_done (i32.ge_s (local.get $r) (local.get $r1)))
                        (local.set $s (local.get $s0))
                        (block $s_done
                          (loop $s_loop
                            (br_if $s_done (i32.ge_s (local.get $s) (local.get $s1)))
                            ;; byte offset of (b, r, s, k) in x and dx
                            (local.set $off
                              (i32.add
                                (i32.mul
                                  (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $r)) (local.get $w)) (local.get $s))
                                  (local.get $cb))
                                (local.get $k)))
                            (local.set $v (v128.load (i32.add (local.get $x) (local.get $off))))
                            (local.set $t (f32x4.gt (local.get $v) (local.get $m)))
                            (local.set $m (v128.bitselect (local.get $v) (local.get $m) (local.get $t)))
                            (local.set $where
                              (v128.bitselect
                                (i32x4.add (i32x4.splat (local.get $off)) (v128.const i32x4 0 4 8 12))
                                (local.get $where)
                                (local.get $t)))
                            (local.set $s (i32.add (local.get $s) (i32.const 1)))
                            (br $s_loop)))
                        (local.set $r (i32.add (local.get $r) (i32.const 1)))
                        (br $r_loop)))
                    ;; a window whose maximum is not above the floor passes nothing
                    (local.set $where
                      (v128.bitselect (local.get $where) (v128.const i32x4 -1 -1 -1 -1) (f32x4.gt (local.get $m) (local.get $floor))))
                    (local.set $gv (v128.load (local.get $g)))
                    (local.set $at (i32x4.extract_lane 0 (local.get $where)))
                    (if (i32.ge_s (local.get $at) (i32.const 0))
                      (then (local.set $at (i32.add (local.get $dx) (local.get $at)))
                        (f32.store (local.get $at) (f32.add (f32.load (local.get $at)) (f32x4.extract_lane 0 (local.get $gv))))))
                    (local.set $at (i32x4.extract_lane 1 (local.get $where)))
                    (if (i32.ge_s (local.get $at) (i32.const 0))
                      (then (local.set $at (i32.add (local.get $dx) (local.get $at)))
                        (f32.store (local.get $at) (f32.add (f32.load (local.get $at)) (f32x4.extract_lane 1 (local.get $gv))))))
                    (local.set $at (i32x4.extract_lane 2 (local.get $where)))
                    (if (i32.ge_s (local.get $at) (i32.const 0))
                      (then (local.set $at (i32.add (local.get $dx) (local.get $at)))
                        (f32.store (local.get $at) (f32.add (f32.load (local.get $at)) (f32x4.extract_lane 2 (local.get $gv))))))
                    (local.set $at (i32x4.extract_lane 3 (local.get $where)))
                    (if (i32.ge_s (local.get $at) (i32.const 0))
                      (then (local.set $at (i32.add (local.get $dx) (local.get $at)))
                        (f32.store (local.get $at) (f32.add (f32.load (local.get $at)) (f32x4.extract_lane 3 (local.get $gv))))))
                    (local.set $g (i32.add (local.get $g) (i32.const 16)))
                    (local.set $k (i32.add (local.get $k) (i32.const 16)))
                    (br $k_loop)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $j_loop)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $i_loop)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $b_loop))))
)
