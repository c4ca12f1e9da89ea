/**
 * Backward kernels for the tfjs `wasm` backend.
 *
 * As shipped (tfjs 4.22.0) the wasm backend cannot train: Conv2DBackpropFilter and the
 * depthwise backprop kernels are missing, so `model.fit` throws and so does an input gradient
 * through a conv layer (the fused conv path always asks for the filter gradient). Its
 * MaxPoolGrad is wrong (the running maximum starts at the smallest positive float, so a window
 * whose maximum is <= 0 loses its gradient; ties pick the last element where the cpu backend
 * picks the first), and its Conv2DBackpropInput is a naive scalar loop.
 *
 * The kernels here are registered with `tf.registerKernel` for backend 'wasm' (which covers
 * the fused paths too). The conv gradients are computed through the backend's own XNNPACK
 * Conv2D kernel:
 * - input gradient: a conv of the stride-dilated, padded upstream gradient with the
 *   spatially flipped, in/out-transposed filter;
 * - filter gradient: a conv of the input with batch and channels swapped, by the upstream
 *   gradient as filter (the forward stride becomes a dilation).
 * Pooling and depthwise gradients are tight loops over the wasm heap with the cpu backend's
 * semantics. Every kernel is tested for parity against the `cpu` backend's gradients; they
 * change speed, never results. Nothing here touches the `tensorflow` or `cpu` backends.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { simdKernels } from './simd.js';

type TensorInfo = tf.TensorInfo;
type NamedInputs = Record<string, TensorInfo>;
type Attrs = Record<string, unknown>;
type KernelArgs = { inputs: NamedInputs; backend: BackendWasm; attrs: Attrs };
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

const WASM = 'wasm';

/**
 * 'advkit' (default): the fast kernels. 'baseline': the slow but correct set a backend needs to
 * train at all (stock Conv2DBackpropInput and BatchMatMul, the generic max-pool gradient); the
 * benchmarks measure the plain loop against it in the same run.
 */
export type WasmKernelMode = 'advkit' | 'baseline';
let mode: WasmKernelMode = 'advkit';
const stockKernels = new Map<string, tf.KernelFunc>();

export function setWasmKernelMode(m: WasmKernelMode): void {
  mode = m;
}

export function getWasmKernelMode(): WasmKernelMode {
  return mode;
}

function stock(name: string): tf.KernelFunc {
  const k = stockKernels.get(name);
  if (!k) throw new Error(`advkit: the stock wasm ${name} kernel is not available`);
  return k;
}

/** Runs a registered wasm kernel directly (no engine bookkeeping: the caller disposes). */
function run(name: string, inputs: NamedInputs, attrs: Attrs, backend: BackendWasm): TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (!kernel) throw new Error(`advkit: the wasm backend has no ${name} kernel`);
  const out = kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend });
  return out as TensorInfo;
}

function free(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** A view of `t` with another shape of the same size (no copy, no refcount: never free it). */
function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

function heap(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t as tf.TensorInfo) as Float32Array;
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0] ?? 1, a[1] ?? a[0] ?? 1];
}

function checkNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`advkit ${kernel} on wasm supports NHWC only, but got dataFormat ${String(dataFormat)}`);
  }
}

/**
 * Copies `src` [N, Ho, Wo, C] into a zero tensor [N, outH, outW, C] at rows top + i*sh and
 * columns left + j*sw; out-of-range positions (negative padding) are dropped.
 */
function dilatePad(backend: BackendWasm, src: TensorInfo, sh: number, sw: number, top: number, left: number, outH: number, outW: number): TensorInfo {
  const [n, h, w, c] = src.shape as [number, number, number, number];
  const out = backend.makeOutput([n, outH, outW, c], 'float32') as TensorInfo;
  const o = heap(backend, out);
  const s = heap(backend, src);
  o.fill(0);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      const r = top + i * sh;
      if (r < 0 || r >= outH) continue;
      for (let j = 0; j < w; j++) {
        const q = left + j * sw;
        if (q < 0 || q >= outW) continue;
        const si = ((b * h + i) * w + j) * c;
        const oi = ((b * outH + r) * outW + q) * c;
        o.set(s.subarray(si, si + c), oi);
      }
    }
  }
  return out;
}

/**
 * A layer's filter as its input gradient needs it (flipped, and for conv2d in/out-transposed),
 * kept between calls by the caller that owns it (one per compiled layer, in the kernel's attrs
 * as `filterCache`): XNNPACK caches its packed operator by the filter's buffer, so a fresh copy
 * each step would repack it and rebuild the operator.
 */
export interface FilterCache {
  key: object | null;
  backend: BackendWasm | null;
  value: TensorInfo | null;
}
export function newFilterCache(): FilterCache {
  return { key: null, backend: null, value: null };
}
export function releaseFilterCache(cache: FilterCache): void {
  if (cache.backend && cache.value) cache.backend.disposeData(cache.value.dataId);
  Object.assign(cache, newFilterCache());
}

/** `make(filter)`, from the cache when it holds this filter; the caller frees it only when `owned`. */
function cachedFilter(backend: BackendWasm, filter: TensorInfo, cache: FilterCache | undefined, make: () => TensorInfo): { value: TensorInfo; owned: boolean } {
  if (!cache) return { value: make(), owned: true };
  if (cache.key !== filter.dataId || cache.backend !== backend || !cache.value) {
    releaseFilterCache(cache);
    Object.assign(cache, { key: filter.dataId, backend, value: make() });
  }
  return { value: cache.value!, owned: false };
}

/** dx of conv2d: conv of the dilated, padded dy with the flipped, transposed filter. */
function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  checkNHWC('Conv2DBackpropInput', attrs.dataFormat);
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number],
    attrs.strides as [number, number], 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const top = kh - 1 - pt;
  const left = kw - 1 - pl;
  const bottom = H + pt - ((Ho - 1) * sh + 1);
  const right = W + pl - ((Wo - 1) * sw + 1);

  if (mode === 'baseline') return stock('Conv2DBackpropInput')({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
  if (info.inChannels <= COL2IM_MAX_CHANNELS) return conv2DBackpropInputCol2Im(backend, dy, filter, info);
  const { value: wT, owned } = cachedFilter(backend, filter, attrs.filterCache as FilterCache | undefined, () => {
    const flipped = run('Reverse', { x: filter }, { dims: [0, 1] }, backend);
    const t = run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] }, backend);
    free(backend, flipped);
    return t;
  });

  let out: TensorInfo;
  if (sh === 1 && sw === 1 && top >= 0 && left >= 0 && bottom >= 0 && right >= 0) {
    const pad: Pad4 = [[0, 0], [top, bottom], [left, right], [0, 0]];
    out = run('Conv2D', { x: dy, filter: wT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] }, backend);
  } else {
    const padded = dilatePad(backend, dy, sh, sw, top, left, H + kh - 1, W + kw - 1);
    out = run('Conv2D', { x: padded, filter: wT }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] }, backend);
    free(backend, padded);
  }
  if (owned) free(backend, wT);
  return out;
}

/**
 * With few input channels (a network's first layer, where the input gradient is the one an
 * attack needs), a conv with that few output channels is a poor fit for XNNPACK. Instead:
 * cols = dy · Wᵀ as one matrix product [N·Ho·Wo, Co] x [Co, kh·kw·Ci], then col2im, a scatter-add
 * of each column back to the input position it came from.
 */
const COL2IM_MAX_CHANNELS = 4;
function conv2DBackpropInputCol2Im(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = kh * kw * Ci;
  const cols = run('BatchMatMul', { a: view(dy, [1, N * Ho * Wo, Co]), b: view(filter, [1, K, Co]) }, { transposeA: false, transposeB: true }, backend);
  const out = backend.makeOutput([N, H, W, Ci], 'float32') as TensorInfo;
  const simd = simdKernels(backend);
  if (simd) {
    heap(backend, out).fill(0);
    simd.col2im(cols, out, info);
    free(backend, cols);
    return out;
  }
  const dx = heap(backend, out);
  const cv = heap(backend, cols);
  dx.fill(0);
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        let k = ((b * Ho + i) * Wo + j) * K;
        for (let p = 0; p < kh; p++) {
          const r = i * sh + p - pt;
          if (r < 0 || r >= H) { k += kw * Ci; continue; }
          for (let q = 0; q < kw; q++) {
            const c0 = j * sw + q - pl;
            if (c0 < 0 || c0 >= W) { k += Ci; continue; }
            const base = ((b * H + r) * W + c0) * Ci;
            for (let c = 0; c < Ci; c++, k++) dx[base + c] = dx[base + c]! + cv[k]!;
          }
        }
      }
    }
  }
  free(backend, cols);
  return out;
}

/** dW of conv2d: conv of x^T (channels as batch) with dy^T as filter, stride as dilation. */
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  const dy = inputs.dy!;
  checkNHWC('Conv2DBackpropFilter', attrs.dataFormat);
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape,
    attrs.strides as [number, number], 1, attrs.pad as 'same', attrs.dimRoundingMode as 'floor' | undefined);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Padding after the input so that the output is exactly kh x kw; negative means crop.
  let bottom = (kh - 1) + (Ho - 1) * sh + 1 - H - pt;
  let right = (kw - 1) + (Wo - 1) * sw + 1 - W - pl;

  // Few input channels (a first layer): the transposed patch matrix and one GEMM. With many,
  // XNNPACK's GEMM runs slowly on that shape and repacks the patch matrix every call, so the
  // batch/channel-swapped convolution below wins.
  if (mode === 'advkit' && info.inChannels <= COL2IM_MAX_CHANNELS) return conv2DBackpropFilterIm2Col(backend, x, dy, info, filterShape);
  let xT = run('Transpose', { x }, { perm: [3, 1, 2, 0] }, backend); // [Ci, H, W, N]
  if (bottom < 0 || right < 0) {
    const [ci, , , n] = xT.shape as [number, number, number, number];
    const cropped = run('Slice', { x: xT }, { begin: [0, 0, 0, 0], size: [ci, H + Math.min(bottom, 0), W + Math.min(right, 0), n] }, backend);
    free(backend, xT);
    xT = cropped;
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  const dyT = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }, backend); // [Ho, Wo, N, Co]
  const pad: Pad4 = [[0, 0], [pt, bottom], [pl, right], [0, 0]];
  const conv = run('Conv2D', { x: xT, filter: dyT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [sh, sw] }, backend);
  free(backend, xT, dyT);
  const out = run('Transpose', { x: conv }, { perm: [1, 2, 0, 3] }, backend); // [kh, kw, Ci, Co]
  free(backend, conv);
  return out;
}

/**
 * dW as one matrix product: im2colᵀ [kh·kw·Ci, N·Ho·Wo] x dy [N·Ho·Wo, Co], with the patch matrix
 * built transposed on the heap (so XNNPACK runs an untransposed GEMM). Faster than the
 * batch/channel-swapped convolution, whose "filter" is the whole upstream gradient.
 */
function conv2DBackpropFilterIm2Col(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo, filterShape: number[]): TensorInfo {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: Ci, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = kh * kw * Ci;
  const M = N * Ho * Wo;
  const simd = Co % 16 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const dW = backend.makeOutput(filterShape, 'float32') as TensorInfo;
    heap(backend, dW).fill(0);
    simd.convFilterGrad(x, dy, dW, info);
    return dW;
  }
  const colsT = backend.makeOutput([1, K, M], 'float32') as TensorInfo;
  const ct = heap(backend, colsT);
  const xv = heap(backend, x);
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      for (let c = 0; c < Ci; c++) {
        const row = ((p * kw + q) * Ci + c) * M;
        let m = 0;
        for (let b = 0; b < N; b++) {
          for (let i = 0; i < Ho; i++) {
            const r = i * sh + p - pt;
            if (r < 0 || r >= H) {
              ct.fill(0, row + m, row + m + Wo);
              m += Wo;
              continue;
            }
            const rowBase = (b * H + r) * W;
            for (let j = 0; j < Wo; j++, m++) {
              const col = j * sw + q - pl;
              ct[row + m] = col < 0 || col >= W ? 0 : xv[(rowBase + col) * Ci + c]!;
            }
          }
        }
      }
    }
  }
  const dW = run('BatchMatMul', { a: colsT, b: view(dy, [1, M, Co]) }, { transposeA: false, transposeB: false }, backend);
  free(backend, colsT);
  return view(dW, filterShape);
}

function depthwiseInfo(xShape: number[], filterShape: number[], attrs: Attrs) {
  checkNHWC('DepthwiseConv2dNative gradient', attrs.dataFormat);
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides as [number, number], (attrs.dilations as [number, number] | undefined) ?? 1, attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined, true);
}

/**
 * dx of depthwise conv2d. With channel multiplier 1 and no dilation (MobileNet, Xception), the
 * backend's XNNPACK depthwise convolution of the stride-dilated, padded dy with the spatially
 * flipped filter; otherwise a loop over the heap (cpu backend semantics).
 */
function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  const info = depthwiseInfo(attrs.inputShape as number[], filter.shape, attrs);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const mult = Co / C;
  if (mode === 'advkit' && mult === 1 && dh === 1 && dw === 1) {
    const { value: flipped, owned } = cachedFilter(backend, filter, attrs.filterCache as FilterCache | undefined, () => run('Reverse', { x: filter }, { dims: [0, 1] }, backend));
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = H + info.padInfo.top - ((Ho - 1) * sh + 1);
    const right = W + info.padInfo.left - ((Wo - 1) * sw + 1);
    let out: TensorInfo;
    const conv = { strides: [1, 1], dataFormat: 'NHWC', dilations: [1, 1] };
    if (sh === 1 && sw === 1 && top >= 0 && left >= 0 && bottom >= 0 && right >= 0) {
      out = run('DepthwiseConv2dNative', { x: dy, filter: flipped }, { ...conv, pad: [[0, 0], [top, bottom], [left, right], [0, 0]] }, backend);
    } else {
      const padded = dilatePad(backend, dy, sh, sw, top, left, H + kh - 1, W + kw - 1);
      out = run('DepthwiseConv2dNative', { x: padded, filter: flipped }, { ...conv, pad: 'valid' }, backend);
      free(backend, padded);
    }
    if (owned) free(backend, flipped);
    return out;
  }
  const out = backend.makeOutput([N, H, W, C], 'float32') as TensorInfo;
  const dx = heap(backend, out);
  const g = heap(backend, dy);
  const f = heap(backend, filter);
  dx.fill(0);
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const gBase = ((b * Ho + i) * Wo + j) * Co;
        for (let p = 0; p < kh; p++) {
          const r = i * sh + p * dh - pt;
          if (r < 0 || r >= H) continue;
          for (let q = 0; q < kw; q++) {
            const s = j * sw + q * dw - pl;
            if (s < 0 || s >= W) continue;
            const xBase = ((b * H + r) * W + s) * C;
            const fBase = (p * kw + q) * Co;
            for (let c = 0; c < C; c++) {
              let acc = 0;
              for (let m = 0; m < mult; m++) acc += g[gBase + c * mult + m]! * f[fBase + c * mult + m]!;
              dx[xBase + c] = dx[xBase + c]! + acc;
            }
          }
        }
      }
    }
  }
  return out;
}

/** dW of depthwise conv2d: SIMD over channels (multiplier 1), else a loop over the heap (cpu backend semantics). */
function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  const dy = inputs.dy!;
  const info = depthwiseInfo(x.shape, attrs.filterShape as number[], attrs);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const mult = Co / C;
  const out = backend.makeOutput(attrs.filterShape as number[], 'float32') as TensorInfo;
  const simd = mode === 'advkit' && mult === 1 && dh === 1 && dw === 1 && C % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    heap(backend, out).fill(0);
    simd.depthwiseFilterGrad(x, dy, out, info);
    return out;
  }
  const dW = heap(backend, out);
  const g = heap(backend, dy);
  const xv = heap(backend, x);
  dW.fill(0);
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const gBase = ((b * Ho + i) * Wo + j) * Co;
        for (let p = 0; p < kh; p++) {
          const r = i * sh + p * dh - pt;
          if (r < 0 || r >= H) continue;
          for (let q = 0; q < kw; q++) {
            const s = j * sw + q * dw - pl;
            if (s < 0 || s >= W) continue;
            const xBase = ((b * H + r) * W + s) * C;
            const fBase = (p * kw + q) * Co;
            for (let c = 0; c < C; c++) {
              const xval = xv[xBase + c]!;
              for (let m = 0; m < mult; m++) {
                const k = fBase + c * mult + m;
                dW[k] = dW[k]! + xval * g[gBase + c * mult + m]!;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * MaxPoolGrad with the cpu backend's semantics: the gradient goes to the first maximum of
 * each window (row-major order), whatever the sign of the values; a window of NaNs passes none.
 */
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  return maxPoolGradInto(backend, inputs.dy!, inputs.input!, attrs as unknown as PoolGradAttrs, false);
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
export function maxPoolGradInto(backend: BackendWasm, dy: TensorInfo, x: TensorInfo, attrs: PoolGradAttrs, relu: boolean): TensorInfo {
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], attrs.filterSize,
    attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const out = backend.makeOutput(x.shape, 'float32') as TensorInfo;
  const tiled = pt === 0 && pl === 0 && kh === sh && kw === sw && Ho * sh <= H && Wo * sw <= W;
  if (mode === 'advkit' && tiled && kh === 2 && kw === 2 && C % 4 === 0) {
    const simd = simdKernels(backend);
    if (simd) {
      if (Ho * 2 !== H || Wo * 2 !== W) heap(backend, out).fill(0);
      simd.maxPool2x2Grad(x, dy, out, { n: N, h: H, w: W, c: C, ho: Ho, wo: Wo }, relu);
      return out;
    }
  }
  const dx = heap(backend, out);
  const g = heap(backend, dy);
  const xv = heap(backend, x);
  dx.fill(0);
  if (mode === 'advkit' && tiled) {
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
 * dy masked by a clamp to [0, hi] taken from its output y: 0 < y < hi ? dy : 0 (ReLU6 with hi = 6;
 * hi = Infinity is the ReLU mask).
 */
export function clampGradInto(backend: BackendWasm, dy: TensorInfo, y: TensorInfo, hi: number): TensorInfo {
  if (hi === Infinity) return reluGradInto(backend, dy, y);
  const out = backend.makeOutput(dy.shape, 'float32') as TensorInfo;
  const n = tf.util.sizeFromShape(dy.shape);
  const simd = mode === 'advkit' ? simdKernels(backend) : null;
  if (simd) {
    simd.clampGrad(dy, y, out, n, hi);
    return out;
  }
  const o = heap(backend, out);
  const g = heap(backend, dy);
  const v = heap(backend, y);
  for (let i = 0; i < n; i++) o[i] = v[i]! > 0 && v[i]! < hi ? g[i]! : 0;
  return out;
}

/** dy masked by a ReLU: y > 0 ? dy : 0, where y is the ReLU's input or output. */
export function reluGradInto(backend: BackendWasm, dy: TensorInfo, y: TensorInfo): TensorInfo {
  const out = backend.makeOutput(dy.shape, 'float32') as TensorInfo;
  const n = tf.util.sizeFromShape(dy.shape);
  const simd = mode === 'advkit' ? simdKernels(backend) : null;
  if (simd) {
    simd.reluGrad(dy, y, out, n);
    return out;
  }
  const o = heap(backend, out);
  const g = heap(backend, dy);
  const v = heap(backend, y);
  for (let i = 0; i < n; i++) o[i] = v[i]! > 0 ? g[i]! : 0;
  return out;
}

/**
 * BatchMatMul with a transposed operand: stock tfjs-wasm leaves XNNPACK for a slow loop, so the
 * operand is transposed explicitly (a fast copy) and the product runs untransposed.
 */
function batchMatMul({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const stockMatMul = stock('BatchMatMul');
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  if (mode === 'baseline' || (!transposeA && !transposeB)) return stockMatMul({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
  const swapLast = (t: TensorInfo) => {
    const r = t.shape.length;
    const perm = Array.from({ length: r }, (_, i) => i);
    perm[r - 1] = r - 2;
    perm[r - 2] = r - 1;
    return run('Transpose', { x: t }, { perm }, backend);
  };
  const dims = (t: TensorInfo) => t.shape.slice(-2) as [number, number];
  if (transposeB && !transposeA) {
    // a·bᵀ = (b·aᵀ)ᵀ when a is the small operand (a batch against a dense layer's kernel): the
    // direct way copies b into bᵀ and XNNPACK packs that fresh operand again (2·n·k floats); the
    // swapped way transposes and packs a (2·m·k) and transposes the product (m·n).
    const [m, k] = dims(inputs.a!);
    const n = dims(inputs.b!)[0];
    if (2 * m * k + m * n < 2 * n * k) {
      const aT = swapLast(inputs.a!);
      const prod = stockMatMul({ inputs: { a: inputs.b!, b: aT }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as tf.NamedAttrMap }) as TensorInfo;
      free(backend, aT);
      const out = swapLast(prod);
      free(backend, prod);
      return out;
    }
  }
  const a = transposeA ? swapLast(inputs.a!) : inputs.a!;
  const b = transposeB ? swapLast(inputs.b!) : inputs.b!;
  const out = stockMatMul({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as tf.NamedAttrMap }) as TensorInfo;
  if (transposeA) free(backend, a);
  if (transposeB) free(backend, b);
  return out;
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

/**
 * Identity shares the input's data (a reference count), as the cpu and webgl backends do;
 * stock wasm copies it, and tfjs clones every tensor it saves for the backward pass.
 */
function identity({ inputs, backend }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  if (mode === 'baseline') return stock('Identity')({ inputs, backend, attrs: {} }) as TensorInfo;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Cast to the same dtype shares the data too (stock wasm copies; ReLU's gradient casts every step). */
function cast({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  if (mode === 'advkit' && attrs.dtype === x.dtype) return identity({ inputs, backend, attrs: {} });
  return stock('Cast')({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
}

/**
 * Sum over the leading axes (a bias gradient: dy summed over batch and space) as one pass of
 * column sums; stock wasm transposes the whole tensor first.
 */
function sum({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
  if (mode === 'baseline' || x.dtype !== 'float32' || !leading) return stock('Sum')({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
  const kept = x.shape.slice(axes.length);
  const cols = kept.reduce((a, b) => a * b, 1);
  const rows = tf.util.sizeFromShape(x.shape) / cols;
  const outShape = attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept;
  const out = backend.makeOutput(outShape, 'float32') as TensorInfo;
  const simd = cols % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const scratch = backend.makeOutput([2 * cols], 'float32') as TensorInfo;
    simd.colSum(x, out, scratch, rows, cols);
    free(backend, scratch);
    return out;
  }
  const o = heap(backend, out);
  const v = heap(backend, x);
  const acc = new Float64Array(cols);
  for (let r = 0, k = 0; r < rows; r++) for (let c = 0; c < cols; c++, k++) acc[c] = acc[c]! + v[k]!;
  o.set(acc);
  return out;
}

let registered = false;

/**
 * Registers advkit's backward kernels for the wasm backend (idempotent). Call after the wasm
 * backend package is imported; `initBackend` does it for you.
 */
export function registerWasmKernels(): void {
  if (registered) return;
  const kernels: Array<[string, (a: KernelArgs) => TensorInfo]> = [
    ['Conv2DBackpropInput', conv2DBackpropInput],
    ['Conv2DBackpropFilter', conv2DBackpropFilter],
    ['DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput],
    ['DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter],
    ['MaxPoolGrad', maxPoolGrad],
    ['BatchMatMul', batchMatMul],
    ['Identity', identity],
    ['Cast', cast],
    ['Sum', sum],
  ];
  for (const [kernelName, fn] of kernels) {
    const stockConfig = tf.getKernel(kernelName, WASM);
    if (stockConfig) {
      stockKernels.set(kernelName, stockConfig.kernelFunc);
      tf.unregisterKernel(kernelName, WASM);
    }
    // Keeping the stock setup (cwrap of the wasm function) lets the wrappers call the stock kernel.
    const setupFunc = stockConfig?.setupFunc;
    tf.registerKernel({ kernelName, backendName: WASM, kernelFunc: fn as unknown as tf.KernelFunc, ...(setupFunc ? { setupFunc } : {}) });
  }
  registered = true;
}

/** Names of the kernels advkit registers for wasm (reported by `advkit info`). */
export const WASM_KERNELS = [
  'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter', 'MaxPoolGrad', 'BatchMatMul', 'Identity', 'Cast', 'Sum',
] as const;
