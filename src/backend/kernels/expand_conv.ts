/**
 * A conv on a map smaller than its filter, as one matrix product.
 *
 * On a 2x2 map a 3x3 'same' conv reads 4 of its 9 taps at each output, but XNNPACK's conv
 * multiplies all 9 (the padding as zeros): 2.25x the arithmetic, on short GEMMs (K = 9·ci split
 * into taps). Written as a dense layer from every input position to every output position,
 *
 *   W_big[(iy, ix, c), (oy, ox, d)] = W[iy − oy·sh + top, ix − ox·sw + left, c, d]  (0 where no tap lands),
 *
 * the conv is x [N, inH·inW·ci] · W_big [inH·inW·ci, outH·outW·co] (+ the bias tiled to
 * outH·outW·co): inH·inW·ci·outH·outW·co multiplications against outH·outW·kh·kw·ci·co, fewer
 * whenever inH·inW < kh·kw, in one long GEMM (K = inH·inW·ci) that XNNPACK runs at its best rate.
 * ResNet-18's last stage at 32x32 (2x2 maps, 3x3 convs) is the case that made it worth having.
 *
 * `AdvkitExpandConv` builds [W_big, tiled bias] from [filter, bias] (bias optional) and keeps them
 * in a slot the layer owns while the filter and bias are the same buffers, so an attack's steps
 * hand XNNPACK the same weights and its packed copy stays warm. Its gradient kernel
 * `AdvkitExpandConvGrad` sums W_big's gradient back onto the taps (the transpose of the
 * expansion); the tiled bias's gradient is a column sum. Both are exact rearrangements: the conv
 * and its gradients equal the direct conv's up to summation order
 * (tests/models/compiler.test.ts, against the layer on wasm and the cpu backend).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heap, type KernelArgs, type TensorInfo } from './heap.js';

export const EXPAND_CONV = 'AdvkitExpandConv';
export const EXPAND_CONV_GRAD = 'AdvkitExpandConvGrad';

/** Where a conv's expanded weights live between calls (one per compiled layer). */
export interface ExpandSlot {
  key: Array<object | string | null>;
  backend: BackendWasm | null;
  big: TensorInfo | null;
  bias: TensorInfo | null;
}
export function newExpandSlot(): ExpandSlot {
  return { key: [], backend: null, big: null, bias: null };
}
export function releaseExpandSlot(slot: ExpandSlot): void {
  if (slot.backend) {
    if (slot.big) slot.backend.disposeData(slot.big.dataId);
    if (slot.bias) slot.backend.disposeData(slot.bias.dataId);
  }
  Object.assign(slot, newExpandSlot());
}

/** The conv's geometry: input and output map sizes, strides, and the padding before each axis. */
export interface ExpandGeometry {
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  strides: [number, number];
  top: number;
  left: number;
}
export interface ExpandConvAttrs extends ExpandGeometry {
  slot: ExpandSlot;
}

/**
 * Calls `f(src, dst)` for each tap that lands inside the map: src the tap's first element in the
 * filter [kh, kw, ci, co] (a run of co per input channel, stride co), dst the matching element of
 * W_big [inH·inW·ci, outH·outW·co] (the same runs, stride outH·outW·co).
 */
function forEachTap(g: ExpandGeometry, filterShape: number[], f: (src: number, dst: number) => void): void {
  const [kh, kw, ci, co] = filterShape as [number, number, number, number];
  const cols = g.outH * g.outW * co;
  for (let oy = 0; oy < g.outH; oy++) {
    for (let ox = 0; ox < g.outW; ox++) {
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * g.strides[0] - g.top + ky;
        if (iy < 0 || iy >= g.inH) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = ox * g.strides[1] - g.left + kx;
          if (ix < 0 || ix >= g.inW) continue;
          for (let c = 0; c < ci; c++) f(((ky * kw + kx) * ci + c) * co, ((iy * g.inW + ix) * ci + c) * cols + (oy * g.outW + ox) * co);
        }
      }
    }
  }
}

function expandConv({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const a = attrs as unknown as ExpandConvAttrs;
  const { filter, bias } = inputs as { filter: TensorInfo; bias?: TensorInfo };
  const { slot } = a;
  const key = [filter.dataId, bias?.dataId ?? null, `${a.inH},${a.inW},${a.outH},${a.outW},${a.strides.join(',')},${a.top},${a.left}`];
  const fresh = slot.backend === backend && slot.big !== null && key.every((k, i) => k === slot.key[i]);
  if (!fresh) {
    releaseExpandSlot(slot);
    const [, , ci, co] = filter.shape as [number, number, number, number];
    const cols = a.outH * a.outW * co;
    // Allocate before taking views of the heap: an allocation can grow (and so detach) it.
    const big = backend.makeOutput([a.inH * a.inW * ci, cols], 'float32') as TensorInfo;
    const tiled = bias ? backend.makeOutput([cols], 'float32') as TensorInfo : null;
    const w = heap(backend, filter);
    const o = heap(backend, big);
    o.fill(0);
    forEachTap(a, filter.shape, (src, dst) => o.set(w.subarray(src, src + co), dst));
    if (tiled) {
      const b = heap(backend, bias!);
      const t = heap(backend, tiled);
      for (let p = 0; p < a.outH * a.outW; p++) t.set(b, p * co);
    }
    Object.assign(slot, { key, backend, big, bias: tiled });
  }
  const out = [slot.big!, ...(slot.bias ? [slot.bias] : [])];
  for (const t of out) backend.incRef(t.dataId);
  return out.map((t) => ({ ...t }));
}

/** The filter's gradient [kh, kw, ci, co] from W_big's (attrs: the geometry and `filterShape`). */
function expandConvGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as ExpandGeometry & { filterShape: number[] };
  const co = a.filterShape[3]!;
  const out = backend.makeOutput(a.filterShape, 'float32') as TensorInfo;
  const dy = heap(backend, inputs.dy!);
  const dw = heap(backend, out);
  dw.fill(0);
  forEachTap(a, a.filterShape, (src, dst) => {
    for (let d = 0; d < co; d++) dw[src + d] = dw[src + d]! + dy[dst + d]!;
  });
  return out;
}

export const expandConvConfig: tf.KernelConfig = { kernelName: EXPAND_CONV, backendName: 'wasm', kernelFunc: expandConv as unknown as tf.KernelFunc };
export const expandConvGradConfig: tf.KernelConfig = { kernelName: EXPAND_CONV_GRAD, backendName: 'wasm', kernelFunc: expandConvGrad as unknown as tf.KernelFunc };
