/**
 * Fused layer ops for the wasm backend, with their gradients.
 *
 * Under a gradient tape tfjs un-fuses a conv or dense layer into conv/matmul, bias add and
 * activation (three passes over the activations, three tensors kept), and takes the ReLU's
 * gradient as step + multiply (two more passes). The ops here run each layer as the backend's
 * fused XNNPACK kernel (conv/matmul + bias + ReLU in one pass) and register gradients that take
 * the ReLU's mask in one pass, or, when a ReLU layer feeds a 2x2 max pool, inside the pooling
 * gradient itself (one SIMD pass computes the gradient at the conv's pre-activation).
 *
 * Gradients are registered per input and computed lazily, so an attack (which needs only the
 * input gradient) never computes weight gradients. The kernels exist for the wasm backend
 * only; `models/compiled.ts` uses these ops only there and falls back to the model's own layers
 * elsewhere. Results equal the cpu backend's gradients (tests/backend/fused.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { maxPoolGradInto, reluGradInto } from './wasm_kernels.js';

type TensorInfo = tf.TensorInfo;
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: Record<string, unknown> };
type Activation = 'relu' | 'linear';

export const FUSED_CONV = 'AdvkitConv2D';
export const FUSED_DENSE = 'AdvkitDense';
export const FUSED_MAX_POOL = 'AdvkitMaxPool';
const MAX_POOL_GRAD = 'AdvkitMaxPoolGrad';
const RELU_GRAD = 'AdvkitReluGrad';

/** The fused ops and their gradient kernels (reported by `advkit info`). */
export const FUSED_OPS = [FUSED_CONV, FUSED_DENSE, FUSED_MAX_POOL, MAX_POOL_GRAD, RELU_GRAD] as const;

export interface ConvAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  activation: Activation;
  /** The gradient arriving here already carries the ReLU's mask (a fused max pool applied it). */
  maskedUpstream: boolean;
}
export interface DenseAttrs {
  activation: Activation;
}
export interface PoolAttrs {
  filterSize: [number, number];
  strides: [number, number];
  pad: 'same' | 'valid';
  /** The input is a ReLU output whose gradient this op's gradient applies as well. */
  reluInput: boolean;
}

function runWasm(name: string, inputs: Record<string, TensorInfo | undefined>, attrs: Record<string, unknown>, backend: BackendWasm): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`advkit: the wasm backend has no ${name} kernel`);
  return kernel.kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, attrs: attrs as tf.NamedAttrMap, backend }) as TensorInfo;
}

function fusedConv({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as ConvAttrs;
  return runWasm('FusedConv2D', { x: inputs.x, filter: inputs.filter, bias: inputs.bias },
    { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dilations: [1, 1], activation: a.activation }, backend);
}

function fusedDense({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  const kernel = inputs.kernel!;
  const [rows, k] = x.shape as [number, number];
  const units = kernel.shape[1]!;
  const out = runWasm('_FusedMatMul', {
    a: { dataId: x.dataId, shape: [1, rows, k], dtype: x.dtype },
    b: { dataId: kernel.dataId, shape: [1, k, units], dtype: kernel.dtype },
    bias: inputs.bias,
  }, { transposeA: false, transposeB: false, activation: (attrs as unknown as DenseAttrs).activation }, backend);
  return { dataId: out.dataId, shape: [rows, units], dtype: out.dtype };
}

function maxPool({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as PoolAttrs;
  return runWasm('MaxPool', { x: inputs.x }, { filterSize: a.filterSize, strides: a.strides, pad: a.pad, dimRoundingMode: undefined }, backend);
}

function maxPoolGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as PoolAttrs;
  return maxPoolGradInto(backend, inputs.dy!, inputs.input!, { filterSize: a.filterSize, strides: a.strides, pad: a.pad }, a.reluInput);
}

function reluGradKernel({ inputs, backend }: KernelArgs): TensorInfo {
  return reluGradInto(backend, inputs.dy!, inputs.y!);
}

/** dy masked by the ReLU whose output (or input) is y: one pass, y > 0 ? dy : 0. */
export function reluGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(RELU_GRAD, { dy, y }, {}) as tf.Tensor;
}

let registered = false;

/** Registers the fused ops for wasm and their gradients (idempotent). */
export function registerFusedOps(): void {
  if (registered) return;
  const kernels: Array<[string, (a: KernelArgs) => TensorInfo]> = [
    [FUSED_CONV, fusedConv], [FUSED_DENSE, fusedDense], [FUSED_MAX_POOL, maxPool],
    [MAX_POOL_GRAD, maxPoolGradKernel], [RELU_GRAD, reluGradKernel],
  ];
  for (const [kernelName, fn] of kernels) {
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
  }

  tf.registerGradient({
    kernelName: FUSED_CONV,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as ConvAttrs;
      const dz = (a.activation === 'relu' && !a.maskedUpstream ? reluGrad(dy as tf.Tensor, y) : dy) as tf.Tensor4D;
      const conv = { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
      return {
        x: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: dz, filter }, { ...conv, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: dz }, { ...conv, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
        bias: () => tf.sum(dz, [0, 1, 2]),
      };
    },
  });

  tf.registerGradient({
    kernelName: FUSED_DENSE,
    inputsToSave: ['x', 'kernel'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, kernel, y] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const dz = ((attrs as unknown as DenseAttrs).activation === 'relu' ? reluGrad(dy as tf.Tensor, y) : dy) as tf.Tensor2D;
      return {
        x: () => tf.matMul(dz, kernel, false, true),
        kernel: () => tf.matMul(x, dz, true, false),
        bias: () => tf.sum(dz, 0),
      };
    },
  });

  tf.registerGradient({
    kernelName: FUSED_MAX_POOL,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor4D];
      return { x: () => tf.engine().runKernel(MAX_POOL_GRAD, { dy: dy as tf.Tensor, input: x }, attrs as tf.NamedAttrMap) as tf.Tensor };
    },
  });
  registered = true;
}
