/**
 * What advkit's wasm kernels share: running a registered wasm kernel on TensorInfos (no engine
 * bookkeeping), views of the backend's heap, the stock kernels advkit's replace (kept at
 * registration, for kernels that delegate to them), and a layer-owned cache of the filter an
 * input gradient needs.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type TensorInfo = tf.TensorInfo;
export type NamedInputs = Record<string, TensorInfo>;
export type Attrs = Record<string, unknown>;
export type KernelArgs = { inputs: NamedInputs; backend: BackendWasm; attrs: Attrs };
export type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

export const WASM = 'wasm';

/** The stock wasm kernels advkit's replace, kept when advkit's are registered. */
export const stockKernels = new Map<string, tf.KernelConfig>();

export function stock(name: string): tf.KernelFunc {
  const k = stockKernels.get(name)?.kernelFunc;
  if (!k) throw new Error(`advkit: the stock wasm ${name} kernel is not available`);
  return k;
}

/** Runs a registered wasm kernel directly (no engine bookkeeping: the caller disposes); absent optional inputs may be undefined. */
export function run(name: string, inputs: Record<string, TensorInfo | undefined>, attrs: Attrs, backend: BackendWasm): TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (!kernel) throw new Error(`advkit: the wasm backend has no ${name} kernel`);
  const out = kernel.kernelFunc({ inputs: inputs as NamedInputs, attrs: attrs as tf.NamedAttrMap, backend });
  return out as TensorInfo;
}

export function free(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** A view of `t` with another shape of the same size (no copy, no refcount: never free it). */
export function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

export function heap(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t as tf.TensorInfo) as Float32Array;
}

/**
 * The whole heap as a view of `t`'s element type, and `t`'s offset in it in elements: for
 * kernels that move runs between tensors with `copyWithin` (no view per run).
 */
export function heapElements(backend: BackendWasm, t: TensorInfo): { all: ReturnType<BackendWasm['typedArrayFromHeap']>; at: number } {
  const v = backend.typedArrayFromHeap(t as tf.TensorInfo);
  const all = new (v.constructor as new (b: ArrayBufferLike) => typeof v)(v.buffer);
  return { all, at: v.byteOffset / v.BYTES_PER_ELEMENT };
}

export function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0] ?? 1, a[1] ?? a[0] ?? 1];
}

export function checkNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`advkit ${kernel} on wasm supports NHWC only, but got dataFormat ${String(dataFormat)}`);
  }
}

/**
 * Copies `src` [N, Ho, Wo, C] into a zero tensor [N, outH, outW, C] at rows top + i*sh and
 * columns left + j*sw; out-of-range positions (negative padding) are dropped.
 */
export function dilatePad(backend: BackendWasm, src: TensorInfo, sh: number, sw: number, top: number, left: number, outH: number, outW: number): TensorInfo {
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
  /** For callers that cache a filter only once it is used twice: the last one seen. */
  seen?: object | null;
}
export function newFilterCache(): FilterCache {
  return { key: null, backend: null, value: null, seen: null };
}
export function releaseFilterCache(cache: FilterCache): void {
  if (cache.backend && cache.value) cache.backend.disposeData(cache.value.dataId);
  Object.assign(cache, newFilterCache());
}

/** `make(filter)`, from the cache when it holds this filter; the caller frees it only when `owned`. */
export function cachedFilter(backend: BackendWasm, filter: TensorInfo, cache: FilterCache | undefined, make: () => TensorInfo): { value: TensorInfo; owned: boolean } {
  if (!cache) return { value: make(), owned: true };
  if (cache.key !== filter.dataId || cache.backend !== backend || !cache.value) {
    releaseFilterCache(cache);
    Object.assign(cache, { key: filter.dataId, backend, value: make() });
  }
  return { value: cache.value!, owned: false };
}

export function depthwiseInfo(xShape: number[], filterShape: number[], attrs: Attrs) {
  checkNHWC('DepthwiseConv2dNative gradient', attrs.dataFormat);
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides as [number, number], (attrs.dilations as [number, number] | undefined) ?? 1, attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined, true);
}
