/**
 * Training-mode batch norm on wasm, forward and gradient, each as two passes over the
 * activations: one pass of column sums accumulated in f64 (simd_kernels.wat `col_sum2`), one
 * per-channel affine map (`col_affine2`); plain loops where SIMD cannot run or the channel
 * count is not a multiple of 4. As tfjs ops the same arithmetic is about fifteen element-wise
 * passes and as many activation-sized temporaries.
 *
 * Forward (x [.., C], rows = the product of the leading axes):
 *   mean = Σx/rows, var = Σx²/rows − mean² (biased, as tfjs-layers' moments), rstd = 1/√(var + eps),
 *   y = (x − mean)·gamma·rstd + beta; outputs [y, mean, var].
 * Gradient, with x̂ = (x − mean)·rstd, Sdy = Σdy and Sdx̂ = Σdy·x̂ = rstd·(Σdy·x − mean·Sdy):
 *   dbeta = Sdy, dgamma = Sdx̂,
 *   dx = gamma·rstd·(dy − Sdy/rows − x̂·Sdx̂/rows).
 * Per-channel constants are computed in f64. The gradient is two kernel calls: the column sums
 * (which are dbeta and dgamma), then dx from them; so all three gradients cost two passes.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { free, heap, type KernelArgs, type TensorInfo } from './heap.js';
import { simdKernels } from '../simd.js';

export const BATCH_NORM_TRAIN = 'AdvkitBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'AdvkitBatchNormTrainGrad';

export interface BatchNormTrainAttrs { epsilon: number }
/**
 * 'sums': [dbeta; dgamma] as a [2, C] tensor (one pass over dy and x); 'x': dx from those sums
 * (input `sums`; one pass).
 */
export interface BatchNormTrainGradAttrs extends BatchNormTrainAttrs { want: 'sums' | 'x' }

function layout(x: TensorInfo): { rows: number; cols: number } {
  const cols = x.shape[x.shape.length - 1]!;
  return { rows: tf.util.sizeFromShape(x.shape) / cols, cols };
}

/** [Σ_r a[r, c], Σ_r a[r, c]·b[r, c]] per column, in f64. */
function columnSums(backend: BackendWasm, a: TensorInfo, b: TensorInfo, rows: number, cols: number): [Float64Array, Float64Array] {
  const s = new Float64Array(cols);
  const p = new Float64Array(cols);
  const simd = cols % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const acc = backend.makeOutput([4 * cols], 'float32') as TensorInfo;
    simd.colSum2(a, b, acc, rows, cols);
    const v = heap(backend, acc);
    const bytes = new DataView(v.buffer, v.byteOffset, 16 * cols);
    for (let c = 0; c < cols; c++) {
      s[c] = bytes.getFloat64(8 * c, true);
      p[c] = bytes.getFloat64(8 * (cols + c), true);
    }
    free(backend, acc);
    return [s, p];
  }
  const va = heap(backend, a);
  const vb = heap(backend, b);
  for (let r = 0, k = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, k++) {
      s[c] = s[c]! + va[k]!;
      p[c] = p[c]! + va[k]! * vb[k]!;
    }
  }
  return [s, p];
}

/** out = a·p[c] + (b − m[c])·q[c] + t[c] (coef = [p, q, t, m], 4·cols). */
function columnAffine(backend: BackendWasm, a: TensorInfo, b: TensorInfo, out: TensorInfo, coef: Float32Array, rows: number, cols: number): void {
  const simd = cols % 4 === 0 ? simdKernels(backend) : null;
  if (simd) {
    const k = backend.makeOutput([4 * cols], 'float32') as TensorInfo;
    heap(backend, k).set(coef);
    simd.colAffine2(a, b, out, k, rows, cols);
    free(backend, k);
    return;
  }
  const [va, vb, vo] = [heap(backend, a), heap(backend, b), heap(backend, out)];
  for (let r = 0, i = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, i++) vo[i] = va[i]! * coef[c]! + (vb[i]! - coef[3 * cols + c]!) * coef[cols + c]! + coef[2 * cols + c]!;
  }
}

function batchNormTrain({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const { epsilon } = attrs as unknown as BatchNormTrainAttrs;
  const { rows, cols } = layout(x);
  const y = backend.makeOutput(x.shape, 'float32') as TensorInfo;
  const mean = backend.makeOutput([cols], 'float32') as TensorInfo;
  const variance = backend.makeOutput([cols], 'float32') as TensorInfo;
  const [sx, sxx] = columnSums(backend, x, x, rows, cols);
  const coef = new Float32Array(4 * cols);
  const [g, bt, m, v] = [heap(backend, gamma), heap(backend, beta), heap(backend, mean), heap(backend, variance)];
  for (let c = 0; c < cols; c++) {
    const mu = sx[c]! / rows;
    const vr = Math.max(sxx[c]! / rows - mu * mu, 0);
    m[c] = mu;
    v[c] = vr;
    coef[cols + c] = g[c]! / Math.sqrt(vr + epsilon);
    coef[2 * cols + c] = bt[c]!;
    coef[3 * cols + c] = mu;
  }
  columnAffine(backend, x, x, y, coef, rows, cols);
  return [y, mean, variance];
}

function batchNormTrainGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, x, gamma, mean, variance, sums } = inputs as Record<'dy' | 'x' | 'gamma' | 'mean' | 'variance' | 'sums', TensorInfo>;
  const { epsilon, want } = attrs as unknown as BatchNormTrainGradAttrs;
  const { rows, cols } = layout(x);
  if (want === 'sums') {
    const out = backend.makeOutput([2, cols], 'float32') as TensorInfo;
    const [sdy, sdyx] = columnSums(backend, dy, x, rows, cols);
    const [m, v, o] = [heap(backend, mean), heap(backend, variance), heap(backend, out)];
    for (let c = 0; c < cols; c++) {
      o[c] = sdy[c]!;
      o[cols + c] = (sdyx[c]! - m[c]! * sdy[c]!) / Math.sqrt(v[c]! + epsilon);
    }
    return out;
  }
  const out = backend.makeOutput(x.shape, 'float32') as TensorInfo;
  const [g, m, v, s] = [heap(backend, gamma), heap(backend, mean), heap(backend, variance), heap(backend, sums)];
  const coef = new Float32Array(4 * cols);
  for (let c = 0; c < cols; c++) {
    const rstd = 1 / Math.sqrt(v[c]! + epsilon);
    const a = g[c]! * rstd;
    coef[c] = a;
    coef[cols + c] = -a * rstd * s[cols + c]! / rows;
    coef[2 * cols + c] = -a * s[c]! / rows;
    coef[3 * cols + c] = m[c]!;
  }
  columnAffine(backend, dy, x, out, coef, rows, cols);
  return out;
}

export const batchNormTrainConfig: tf.KernelConfig = { kernelName: BATCH_NORM_TRAIN, backendName: 'wasm', kernelFunc: batchNormTrain as unknown as tf.KernelFunc };
export const batchNormTrainGradConfig: tf.KernelConfig = { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'wasm', kernelFunc: batchNormTrainGrad as unknown as tf.KernelFunc };
