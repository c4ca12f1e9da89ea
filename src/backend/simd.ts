/**
 * advkit's SIMD kernels (simd_kernels.wat), instantiated on the wasm backend's own memory so they
 * work on tensors in place. Loops whose cost in JavaScript is branch mispredictions (max-pool
 * gradients) or a pass per operation (the ReLU gradient as step + multiply) run here as
 * branch-free 128-bit SIMD.
 *
 * The threaded backend (wasm_threads.ts) has a shared memory; the module is then the variant
 * that imports a shared memory (the same code). `simdKernels(backend)` returns null where the
 * module cannot run (no WebAssembly SIMD in this runtime); callers then use their JavaScript
 * path, which has the same semantics.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { SIMD_KERNELS_WASM, SIMD_KERNELS_WASM_SHARED } from './simd_kernels.generated.js';

export interface SimdKernels {
  /** out = y > 0 ? dy : 0 over n floats. */
  reluGrad(dy: tf.TensorInfo, y: tf.TensorInfo, out: tf.TensorInfo, n: number): void;
  /** out = 0 < y < hi ? dy : 0 over n floats (ReLU6's gradient with hi = 6). */
  clampGrad(dy: tf.TensorInfo, y: tf.TensorInfo, out: tf.TensorInfo, n: number, hi: number): void;
  /** 2x2/2 max-pool gradient (see simd_kernels.wat); C must be a multiple of 4. */
  maxPool2x2Grad(x: tf.TensorInfo, dy: tf.TensorInfo, dx: tf.TensorInfo, dims: { n: number; h: number; w: number; c: number; ho: number; wo: number }, relu: boolean): void;
  /** Adds any max-pool window's gradient into dx (zeroed by the caller); C a multiple of 4. */
  maxPoolGrad(x: tf.TensorInfo, dy: tf.TensorInfo, dx: tf.TensorInfo, info: tf.backend_util.Conv2DInfo, relu: boolean): void;
  /** out[c] = Σ_r x[r, c] accumulated in f64 (scratch: 2·cols floats); cols a multiple of 4. */
  colSum(x: tf.TensorInfo, out: tf.TensorInfo, scratch: tf.TensorInfo, rows: number, cols: number): void;
  /** Adds the conv2d filter gradient into dW (zeroed by the caller); outChannels a multiple of 16. */
  convFilterGrad(x: tf.TensorInfo, dy: tf.TensorInfo, dW: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): void;
  /** Adds the depthwise filter gradient (multiplier 1) into dW (zeroed by the caller); channels a multiple of 4. */
  depthwiseFilterGrad(x: tf.TensorInfo, dy: tf.TensorInfo, dW: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): void;
  /** acc (2·cols f64) = [Σ_r a[r, c], Σ_r a[r, c]·b[r, c]] over [rows, cols] pairs; cols a multiple of 4. */
  colSum2(a: tf.TensorInfo, b: tf.TensorInfo, acc: tf.TensorInfo, rows: number, cols: number): void;
  /** out = a·p[c] + (b − m[c])·q[c] + t[c], coef = [p, q, t, m]; cols a multiple of 4. */
  colAffine2(a: tf.TensorInfo, b: tf.TensorInfo, out: tf.TensorInfo, coef: tf.TensorInfo, rows: number, cols: number): void;
  /** Adds the depthwise conv input gradient (multiplier 1) into dx (zeroed by the caller), as a scatter of dy·w. */
  depthwiseScatter(dy: tf.TensorInfo, filter: tf.TensorInfo, dx: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): void;
  /** Scatter-adds the patch matrix cols [N·Ho·Wo, kh·kw·Ci] into dx (zeroed by the caller). */
  col2im(cols: tf.TensorInfo, dx: tf.TensorInfo, info: tf.backend_util.Conv2DInfo): void;
  /** out = max(a, b) or min(a, b) over n floats as std::max/std::min; a one-float a or b is broadcast. */
  minMax(a: tf.TensorInfo, b: tf.TensorInfo, out: tf.TensorInfo, n: number, o: { scalarA: boolean; scalarB: boolean; min: boolean }): void;
}

interface Exports {
  relu_grad(dy: number, y: number, out: number, n: number): void;
  clamp_grad(dy: number, y: number, out: number, n: number, hi: number): void;
  maxpool2x2_grad(x: number, dy: number, dx: number, n: number, h: number, w: number, c: number, ho: number, wo: number, relu: number): void;
  col_sum(x: number, out: number, scratch: number, rows: number, cols: number): void;
  conv_filter_grad(x: number, dy: number, dw: number, n: number, h: number, w: number, ci: number, ho: number, wo: number, co: number,
    kh: number, kw: number, sh: number, sw: number, pt: number, pl: number): void;
  depthwise_filter_grad(x: number, dy: number, dw: number, n: number, h: number, w: number, c: number, ho: number, wo: number,
    kh: number, kw: number, sh: number, sw: number, pt: number, pl: number): void;
  col_sum2(a: number, b: number, acc: number, rows: number, cols: number): void;
  col_affine2(a: number, b: number, out: number, coef: number, rows: number, cols: number): void;
  depthwise_scatter(dy: number, w: number, dx: number, n: number, h: number, wd: number, ch: number, ho: number, wo: number,
    kh: number, kw: number, sh: number, sw: number, pt: number, pl: number): void;
  col2im(cols: number, dx: number, n: number, h: number, w: number, ci: number, ho: number, wo: number,
    kh: number, kw: number, sh: number, sw: number, pt: number, pl: number): void;
  maxpool_grad(x: number, dy: number, dx: number, n: number, h: number, w: number, c: number, ho: number, wo: number,
    kh: number, kw: number, sh: number, sw: number, pt: number, pl: number, relu: number): void;
  min_max(a: number, b: number, out: number, n: number, sa: number, sb: number, min: number): void;
}

/** The part of the WebAssembly JS API used here (the compiler's lib has no DOM types). */
interface WasmMemory { readonly buffer: ArrayBufferLike }
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const cache = new WeakMap<BackendWasm, SimdKernels | null>();
const compiled = new Map<boolean, object | null>();

/** The compiled module for a plain or a shared memory (null without WebAssembly SIMD). */
function compile(shared: boolean): object | null {
  if (!compiled.has(shared)) {
    try {
      compiled.set(shared, new WA.Module(Buffer.from(shared ? SIMD_KERNELS_WASM_SHARED : SIMD_KERNELS_WASM, 'base64')));
    } catch {
      compiled.set(shared, null); // no WebAssembly SIMD here
    }
  }
  return compiled.get(shared)!;
}

function backendMemory(backend: BackendWasm): WasmMemory | null {
  const wasm = backend.wasm as unknown as { asm?: { memory?: unknown }; wasmMemory?: unknown; HEAPU8: Uint8Array };
  const memory = wasm.asm?.memory ?? wasm.wasmMemory;
  if (!(memory instanceof WA.Memory)) return null;
  if (memory.buffer !== wasm.HEAPU8.buffer) return null;
  return memory;
}

const isShared = (memory: WasmMemory) => typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;

/** The SIMD kernels bound to this backend's heap, or null where they cannot run. */
export function simdKernels(backend: BackendWasm): SimdKernels | null {
  if (cache.has(backend)) return cache.get(backend)!;
  let kernels: SimdKernels | null = null;
  const memory = backendMemory(backend);
  const module = memory ? compile(isShared(memory)) : null;
  if (module && memory) {
    const e = new WA.Instance(module, { env: { memory } }).exports as unknown as Exports;
    const at = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset;
    kernels = {
      reluGrad: (dy, y, out, n) => e.relu_grad(at(dy), at(y), at(out), n),
      clampGrad: (dy, y, out, n, hi) => e.clamp_grad(at(dy), at(y), at(out), n, hi),
      maxPool2x2Grad: (x, dy, dx, d, relu) => e.maxpool2x2_grad(at(x), at(dy), at(dx), d.n, d.h, d.w, d.c, d.ho, d.wo, relu ? 1 : 0),
      maxPoolGrad: (x, dy, dx, i, relu) => e.maxpool_grad(at(x), at(dy), at(dx), i.batchSize, i.inHeight, i.inWidth, i.inChannels,
        i.outHeight, i.outWidth, i.filterHeight, i.filterWidth, i.strideHeight, i.strideWidth, i.padInfo.top, i.padInfo.left, relu ? 1 : 0),
      colSum: (x, out, scratch, rows, cols) => e.col_sum(at(x), at(out), at(scratch), rows, cols),
      convFilterGrad: (x, dy, dW, i) => e.conv_filter_grad(at(x), at(dy), at(dW), i.batchSize, i.inHeight, i.inWidth, i.inChannels,
        i.outHeight, i.outWidth, i.outChannels, i.filterHeight, i.filterWidth, i.strideHeight, i.strideWidth, i.padInfo.top, i.padInfo.left),
      depthwiseFilterGrad: (x, dy, dW, i) => e.depthwise_filter_grad(at(x), at(dy), at(dW), i.batchSize, i.inHeight, i.inWidth, i.inChannels,
        i.outHeight, i.outWidth, i.filterHeight, i.filterWidth, i.strideHeight, i.strideWidth, i.padInfo.top, i.padInfo.left),
      colSum2: (a, b, acc, rows, cols) => e.col_sum2(at(a), at(b), at(acc), rows, cols),
      colAffine2: (a, b, out, coef, rows, cols) => e.col_affine2(at(a), at(b), at(out), at(coef), rows, cols),
      depthwiseScatter: (dy, filter, dx, i) => e.depthwise_scatter(at(dy), at(filter), at(dx), i.batchSize, i.inHeight, i.inWidth, i.inChannels,
        i.outHeight, i.outWidth, i.filterHeight, i.filterWidth, i.strideHeight, i.strideWidth, i.padInfo.top, i.padInfo.left),
      col2im: (cols, dx, i) => e.col2im(at(cols), at(dx), i.batchSize, i.inHeight, i.inWidth, i.inChannels,
        i.outHeight, i.outWidth, i.filterHeight, i.filterWidth, i.strideHeight, i.strideWidth, i.padInfo.top, i.padInfo.left),
      minMax: (a, b, out, n, o) => e.min_max(at(a), at(b), at(out), n, o.scalarA ? 1 : 0, o.scalarB ? 1 : 0, o.min ? 1 : 0),
    };
  }
  cache.set(backend, kernels);
  return kernels;
}
