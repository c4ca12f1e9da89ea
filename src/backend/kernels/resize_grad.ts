/**
 * The input gradients of ResizeNearestNeighbor and ResizeBilinear (Keras UpSampling2D and
 * Resizing, GraphModels' resize ops), as the adjoint of the forward kernel: each output pixel's
 * gradient is added to the input pixels it was read from, with the forward's weights. Stock
 * tfjs-wasm's nearest-neighbour gradient is wrong (50% relative error on a 2x upsampling), and
 * tfjs' cpu ones are wrong too (the nearest-neighbour one fails the adjoint identity and loops
 * forever on a one-pixel axis with alignCorners; the bilinear one swaps height and width; both
 * ignore halfPixelCenters), so advkit registers these for both backends. They follow the forward
 * for every alignCorners and halfPixelCenters.
 */
import * as tf from '@tensorflow/tfjs';
import { heap, type KernelArgs, type TensorInfo } from './heap.js';

interface ResizeAttrs { alignCorners: boolean; halfPixelCenters: boolean }

/** The forward's source coordinate of output index i along an axis (tfjs' cpu kernels). */
function sourceScale(inSize: number, outSize: number, alignCorners: boolean): number {
  const aligned = alignCorners && outSize > 1;
  return (aligned ? inSize - 1 : inSize) / (aligned ? outSize - 1 : outSize);
}

/** Per output index, the input index nearest-neighbour resizing reads. */
function nearestSources(inSize: number, outSize: number, { alignCorners, halfPixelCenters }: ResizeAttrs): Int32Array {
  const scale = sourceScale(inSize, outSize, alignCorners);
  return Int32Array.from({ length: outSize }, (_, i) => {
    const frac = halfPixelCenters ? scale * (i + 0.5) : scale * i;
    const nearest = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    return halfPixelCenters ? Math.max(0, nearest) : nearest;
  });
}

type Dims = { n: number; h: number; w: number; c: number; oh: number; ow: number };

/** dx (zeroed) += the nearest-neighbour resize's adjoint applied to g. */
function nearestAdjoint(g: Float32Array, dx: Float32Array, { n, h, w, c, oh, ow }: Dims, attrs: ResizeAttrs): void {
  const rows = nearestSources(h, oh, attrs);
  const cols = nearestSources(w, ow, attrs);
  let k = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      const rowBase = (b * h + rows[r]!) * w;
      for (let q = 0; q < ow; q++) {
        const base = (rowBase + cols[q]!) * c;
        for (let d = 0; d < c; d++) dx[base + d] = dx[base + d]! + g[k++]!;
      }
    }
  }
}

/** Per output index: the two input indices bilinear resizing reads and the second one's weight. */
function bilinearSources(inSize: number, outSize: number, { alignCorners, halfPixelCenters }: ResizeAttrs) {
  const scale = sourceScale(inSize, outSize, alignCorners);
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = halfPixelCenters ? scale * (i + 0.5) - 0.5 : scale * i;
    lo[i] = Math.max(0, Math.floor(src));
    hi[i] = Math.min(inSize - 1, Math.ceil(src));
    // As the forward: out = a + (b - a)·f, so a gets 1 - f and b gets f (f < 0 at a border).
    frac[i] = src - lo[i]!;
  }
  return { lo, hi, frac };
}

/** dx (zeroed) += the bilinear resize's adjoint applied to g. */
function bilinearAdjoint(g: Float32Array, dx: Float32Array, { n, h, w, c, oh, ow }: Dims, attrs: ResizeAttrs): void {
  const R = bilinearSources(h, oh, attrs);
  const C = bilinearSources(w, ow, attrs);
  let k = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      const top = (b * h + R.lo[r]!) * w;
      const bottom = (b * h + R.hi[r]!) * w;
      const fr = R.frac[r]!;
      for (let q = 0; q < ow; q++) {
        const fc = C.frac[q]!;
        const tl = (top + C.lo[q]!) * c;
        const tr = (top + C.hi[q]!) * c;
        const bl = (bottom + C.lo[q]!) * c;
        const br = (bottom + C.hi[q]!) * c;
        const wtl = (1 - fr) * (1 - fc);
        const wtr = (1 - fr) * fc;
        const wbl = fr * (1 - fc);
        const wbr = fr * fc;
        for (let d = 0; d < c; d++) {
          const v = g[k++]!;
          dx[tl + d] = dx[tl + d]! + v * wtl;
          dx[tr + d] = dx[tr + d]! + v * wtr;
          dx[bl + d] = dx[bl + d]! + v * wbl;
          dx[br + d] = dx[br + d]! + v * wbr;
        }
      }
    }
  }
}

type Adjoint = typeof nearestAdjoint;
const dims = (images: TensorInfo, dy: TensorInfo): Dims => {
  const [n, h, w, c] = images.shape as [number, number, number, number];
  return { n, h, w, c, oh: dy.shape[1]!, ow: dy.shape[2]! };
};

/** The kernel on the wasm backend's heap. */
function onWasm(adjoint: Adjoint) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    const out = backend.makeOutput(images.shape, 'float32') as TensorInfo;
    const dx = heap(backend, out);
    dx.fill(0);
    adjoint(heap(backend, dy), dx, dims(images, dy), attrs as unknown as ResizeAttrs);
    return out;
  };
}

/** The kernel on the cpu backend, whose own resize gradients are wrong too. */
function onCpu(adjoint: Adjoint) {
  return ({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: tf.KernelBackend; attrs: unknown }): TensorInfo => {
    const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
    const cpu = backend as unknown as { data: { get(id: object): { values: Float32Array } }; makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo };
    const dx = new Float32Array(tf.util.sizeFromShape(images.shape));
    adjoint(cpu.data.get(dy.dataId).values, dx, dims(images, dy), attrs as ResizeAttrs);
    return cpu.makeTensorInfo(images.shape, 'float32', dx);
  };
}

export const resizeNearestNeighborGradConfig: tf.KernelConfig = { kernelName: 'ResizeNearestNeighborGrad', backendName: 'wasm', kernelFunc: onWasm(nearestAdjoint) as unknown as tf.KernelFunc };
export const resizeBilinearGradConfig: tf.KernelConfig = { kernelName: 'ResizeBilinearGrad', backendName: 'wasm', kernelFunc: onWasm(bilinearAdjoint) as unknown as tf.KernelFunc };

/** The same two for the cpu backend (register_all_kernels.ts' CPU_KERNELS). */
export const resizeNearestNeighborGradCpuConfig: tf.KernelConfig = { kernelName: 'ResizeNearestNeighborGrad', backendName: 'cpu', kernelFunc: onCpu(nearestAdjoint) as unknown as tf.KernelFunc };
export const resizeBilinearGradCpuConfig: tf.KernelConfig = { kernelName: 'ResizeBilinearGrad', backendName: 'cpu', kernelFunc: onCpu(bilinearAdjoint) as unknown as tf.KernelFunc };
