/**
 * MaxPoolGrad with the cpu backend's semantics (stock tfjs-wasm's starts its running maximum at
 * the smallest positive float, so a window whose maximum is <= 0 loses its gradient, and picks
 * the last of equal maxima). Advkit's table adds a tiled fast path, a SIMD 2x2 kernel and a SIMD
 * kernel for any window, stride and padding (ResNet's 3x3/2 stem pool, Xception's); the
 * baseline table runs the generic loop. `maxPoolGradInto` also serves advkit's fused max pool.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heap, type KernelArgs, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

/**
 * MaxPoolGrad with the cpu backend's semantics: the gradient goes to the first maximum of
 * each window (row-major order), whatever the sign of the values; a window of NaNs passes none.
 */
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs, fast: boolean): TensorInfo {
  return maxPoolGradInto(backend, inputs.dy!, inputs.input!, attrs as unknown as PoolGradAttrs, false, fast);
}

export interface PoolGradAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'same' | 'valid' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * The max-pool gradient of `x` (cpu semantics). With `relu`, x is a ReLU output and the ReLU's
 * gradient is applied too (a window whose maximum is not > 0 passes nothing): the gradient at
 * the ReLU's input, in one pass.
 */
export function maxPoolGradInto(backend: BackendWasm, dy: TensorInfo, x: TensorInfo, attrs: PoolGradAttrs, relu: boolean, fast = true): TensorInfo {
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], attrs.filterSize,
    attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const out = backend.makeOutput(x.shape, 'float32') as TensorInfo;
  const tiled = pt === 0 && pl === 0 && kh === sh && kw === sw && Ho * sh <= H && Wo * sw <= W;
  if (fast && tiled && kh === 2 && kw === 2 && C % 4 === 0) {
    const simd = simdKernels(backend);
    if (simd) {
      if (Ho * 2 !== H || Wo * 2 !== W) heap(backend, out).fill(0);
      simd.maxPool2x2Grad(x, dy, out, { n: N, h: H, w: W, c: C, ho: Ho, wo: Wo }, relu);
      return out;
    }
  }
  const dx = heap(backend, out);
  dx.fill(0);
  if (fast && !tiled && C % 4 === 0) {
    const simd = simdKernels(backend);
    if (simd) {
      simd.maxPoolGrad(x, dy, out, info, relu);
      return out;
    }
  }
  const g = heap(backend, dy);
  const xv = heap(backend, x);
  if (fast && tiled) {
    maxPoolGradTiled(xv, g, dx, N, H, W, C, Ho, Wo, kh, kw);
  } else {
    maxPoolGradGeneric(xv, g, dx, info);
  }
  if (relu) for (let i = 0; i < dx.length; i++) if (!(xv[i]! > 0)) dx[i] = 0;
  return out;
}

function maxPoolGradGeneric(xv: Float32Array, g: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        best.fill(-Infinity);
        where.fill(-1);
        for (let p = 0; p < kh; p++) {
          const r = i * sh + p - pt;
          if (r < 0 || r >= H) continue;
          for (let q = 0; q < kw; q++) {
            const s = j * sw + q - pl;
            if (s < 0 || s >= W) continue;
            const base = ((b * H + r) * W + s) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c]!;
              if (v > best[c]!) {
                best[c] = v;
                where[c] = base + c;
              }
            }
          }
        }
        const gBase = ((b * Ho + i) * Wo + j) * C;
        for (let c = 0; c < C; c++) {
          const k = where[c]!;
          if (k >= 0) dx[k] = dx[k]! + g[gBase + c]!;
        }
      }
    }
  }
}

/**
 * MaxPoolGrad for windows that tile the input (stride = window, no padding: the common 2x2/2
 * pool): each input element belongs to at most one window, so no accumulation is needed.
 */
function maxPoolGradTiled(xv: Float32Array, g: Float32Array, dx: Float32Array, N: number, H: number, W: number, C: number, Ho: number, Wo: number, kh: number, kw: number): void {
  if (kh === 2 && kw === 2) {
    maxPoolGrad2x2(xv, g, dx, N, H, W, C, Ho, Wo);
    return;
  }
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const gBase = ((b * Ho + i) * Wo + j) * C;
        const base0 = ((b * H + i * kh) * W + j * kw) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let p = 0; p < kh; p++) {
            let k = base0 + p * W * C + c;
            for (let q = 0; q < kw; q++, k += C) {
              const v = xv[k]!;
              if (v > best) {
                best = v;
                at = k;
              }
            }
          }
          if (at >= 0) dx[at] = g[gBase + c]!;
        }
      }
    }
  }
}

/** The 2x2/2 case unrolled: first maximum in row-major order, as the cpu backend picks. */
function maxPoolGrad2x2(xv: Float32Array, g: Float32Array, dx: Float32Array, N: number, H: number, W: number, C: number, Ho: number, Wo: number): void {
  const row = W * C;
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const gBase = ((b * Ho + i) * Wo + j) * C;
        const k00 = ((b * H + 2 * i) * W + 2 * j) * C;
        const k01 = k00 + C;
        const k10 = k00 + row;
        const k11 = k10 + C;
        for (let c = 0; c < C; c++) {
          let at = -1;
          let best = -Infinity;
          let v = xv[k00 + c]!;
          if (v > best) { best = v; at = k00 + c; }
          v = xv[k01 + c]!;
          if (v > best) { best = v; at = k01 + c; }
          v = xv[k10 + c]!;
          if (v > best) { best = v; at = k10 + c; }
          v = xv[k11 + c]!;
          if (v > best) { best = v; at = k11 + c; }
          if (at >= 0) dx[at] = g[gBase + c]!;
        }
      }
    }
  }
}

export const maxPoolGradConfig: tf.KernelConfig = { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => maxPoolGrad(a, true)) as unknown as tf.KernelFunc };
/** The baseline table's: the generic loop only. */
export const maxPoolGradBaselineConfig: tf.KernelConfig = { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: ((a: KernelArgs) => maxPoolGrad(a, false)) as unknown as tf.KernelFunc };
