/**
 * Fused layer ops for the wasm backend, with their gradients.
 *
 * Under a gradient tape tfjs un-fuses a conv or dense layer into conv/matmul, bias add and
 * activation (three passes over the activations, three tensors kept), takes the ReLU's gradient
 * as step + multiply (two more passes) and ReLU6's as four kernels, and its own fused ops
 * (`customGrad`) compute the filter and bias gradients even when only the input gradient is
 * asked for. The ops here run each layer as the backend's fused XNNPACK kernel (conv, depthwise
 * conv or matmul + bias + ReLU/ReLU6 clamp in one pass) and register gradients that take the
 * activation's mask in one pass, or, when a ReLU layer feeds a 2x2 max pool, inside the pooling
 * gradient itself (one SIMD pass computes the gradient at the conv's pre-activation).
 *
 * Gradients are registered per input and computed lazily: tfjs prunes the inputs that do not
 * lead to what is differentiated, so an attack (which needs only the input gradient) never
 * computes weight gradients.
 *
 * `AdvkitFoldBatchNorm` folds an inference-mode batch norm into the weights before it: W' = W·s,
 * b' = (b − mean)·s + beta with s = gamma / sqrt(var + eps). Its kernel keeps the folded weights
 * of the last weights it saw in a slot the caller owns (one per layer) and hands out the same
 * buffer while the weights are unchanged, so XNNPACK's packed-weight cache stays warm across
 * attack steps; its gradient is the exact chain rule back to W, b, gamma, beta, mean and var.
 *
 * The kernels exist for the wasm backend only; `models/compiler` uses these ops only there and
 * runs plain tfjs ops elsewhere. Results equal the cpu backend's gradients
 * (tests/backend/fused.test.ts, tests/models/compiler.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { clampGradInto, reluGradInto } from './kernels/activation_grad.js';
import { cachedFilter, heap, newFilterCache, releaseFilterCache, run, type FilterCache } from './kernels/heap.js';
import { maxPoolGradInto } from './kernels/max_pool_grad.js';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, batchNormTrainConfig, batchNormTrainGradConfig, type BatchNormTrainGradAttrs } from './kernels/batch_norm_train.js';
import { EXPAND_CONV, EXPAND_CONV_GRAD, expandConvConfig, expandConvGradConfig, type ExpandConvAttrs } from './kernels/expand_conv.js';

type TensorInfo = tf.TensorInfo;
type KernelArgs = { inputs: Record<string, TensorInfo>; backend: BackendWasm; attrs: Record<string, unknown> };
/** Activations the fused kernels apply in place (XNNPACK's output clamp). */
export type Activation = 'linear' | 'relu' | 'relu6';
/** 'same', 'valid', or explicit NHWC padding [[0, 0], [top, bottom], [left, right], [0, 0]]. */
export type ConvPad = 'same' | 'valid' | number[][];

export const FUSED_CONV = 'AdvkitConv2D';
export const FUSED_DENSE = 'AdvkitDense';
export const FUSED_DEPTHWISE = 'AdvkitDepthwiseConv2D';
export const FUSED_MAX_POOL = 'AdvkitMaxPool';
export const FUSED_CLAMP = 'AdvkitClamp';
export const FOLD_BATCH_NORM = 'AdvkitFoldBatchNorm';
export const CROP_FILTER = 'AdvkitCropFilter';
const MAX_POOL_GRAD = 'AdvkitMaxPoolGrad';
const RELU_GRAD = 'AdvkitReluGrad';
const ACT_GRAD = 'AdvkitActivationGrad';
const DENSE_INPUT_GRAD = 'AdvkitDenseInputGrad';

/** The fused ops and their gradient kernels (reported by `advkit info`). */
export const FUSED_OPS = [FUSED_CONV, FUSED_DEPTHWISE, FUSED_DENSE, FUSED_MAX_POOL, FUSED_CLAMP, FOLD_BATCH_NORM, CROP_FILTER, BATCH_NORM_TRAIN, MAX_POOL_GRAD, RELU_GRAD, ACT_GRAD, BATCH_NORM_TRAIN_GRAD, EXPAND_CONV, EXPAND_CONV_GRAD, DENSE_INPUT_GRAD] as const;

export interface ConvAttrs {
  strides: [number, number];
  pad: ConvPad;
  activation: Activation;
  /** The gradient arriving here already carries the ReLU's mask (a fused max pool applied it). */
  maskedUpstream: boolean;
  /** The layer's cache of the filter its input gradient uses (kernels/heap.ts). */
  filterCache?: FilterCache;
}
export interface DenseAttrs {
  activation: Activation;
  /** The layer's cache of its transposed kernel, for the input gradient (kernels/heap.ts). */
  kernelCache?: FilterCache;
}
export interface ClampAttrs {
  activation: Exclude<Activation, 'linear'>;
}
/** Where the fold kernel keeps the folded weights of the last weights it saw (one per layer). */
export interface FoldSlot {
  key: object[];
  backend: BackendWasm | null;
  filter: TensorInfo | null;
  bias: TensorInfo | null;
}
export interface FoldAttrs {
  epsilon: number;
  slot: FoldSlot;
  /** Which of bias, gamma, beta the layer has (absent ones arrive as 0, 1, 0). */
  present?: { bias: boolean; gamma: boolean; beta: boolean };
}
export function newFoldSlot(): FoldSlot {
  return { key: [], backend: null, filter: null, bias: null };
}
/** Releases a slot's folded weights (the slot refills on its next use). */
export function releaseFoldSlot(slot: FoldSlot): void {
  if (slot.backend && slot.filter && slot.bias) {
    slot.backend.disposeData(slot.filter.dataId);
    slot.backend.disposeData(slot.bias.dataId);
  }
  slot.key = [];
  slot.backend = null;
  slot.filter = null;
  slot.bias = null;
}

/**
 * Where the crop kernel keeps the cropped filter of the last filter it saw (one per layer), so
 * that an attack's steps hand XNNPACK the same buffer and its packed weights stay warm: a filter
 * cache (kernels/heap.ts) that also remembers which taps it kept. Released by releaseFilterCache.
 */
export interface CropSlot extends FilterCache {
  sig: string;
}
export interface CropAttrs {
  /** First kept tap [row, col] and the kept taps [rows, cols]. */
  begin: [number, number];
  size: [number, number];
  slot: CropSlot;
}
export function newCropSlot(): CropSlot {
  return { ...newFilterCache(), sig: '' };
}

const CLAMP_HI: Record<Activation, number> = { linear: Infinity, relu: Infinity, relu6: 6 };

export interface PoolAttrs {
  filterSize: [number, number];
  strides: [number, number];
  pad: 'same' | 'valid';
  /** The input is a ReLU output whose gradient this op's gradient applies as well. */
  reluInput: boolean;
}


function fusedConv({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as ConvAttrs;
  return run('FusedConv2D', { x: inputs.x, filter: inputs.filter, bias: inputs.bias },
    { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dilations: [1, 1], activation: a.activation }, backend);
}

function fusedDepthwise({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as ConvAttrs;
  return run('FusedDepthwiseConv2D', { x: inputs.x, filter: inputs.filter, bias: inputs.bias },
    { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dilations: [1, 1], activation: a.activation }, backend);
}

function clamp({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  return run((attrs as unknown as ClampAttrs).activation === 'relu6' ? 'Relu6' : 'Relu', { x: inputs.x }, {}, backend);
}

function activationGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  return clampGradInto(backend, inputs.dy!, inputs.y!, CLAMP_HI[(attrs as unknown as ClampAttrs).activation]);
}

/**
 * Folded weights [filter', bias'] for the slot's layer, computed on the heap (f64 scale) when the
 * weights changed since the slot was filled, else the slot's buffers, shared (a reference count).
 */
function foldBatchNorm({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { epsilon, slot, present } = attrs as unknown as FoldAttrs;
  const names = ['filter', 'bias', 'gamma', 'beta', 'mean', 'variance'] as const;
  const has = (n: (typeof names)[number]) => n !== 'bias' && n !== 'gamma' && n !== 'beta' ? true : present?.[n] ?? true;
  // Absent inputs are per-call defaults: the cache key names them instead.
  const key = names.map((n) => (has(n) ? inputs[n]!.dataId : n));
  const fresh = slot.backend === backend && slot.filter !== null && key.every((k, i) => k === slot.key[i]);
  if (!fresh) {
    releaseFoldSlot(slot);
    const filter = inputs.filter!;
    const co = inputs.mean!.shape[0]!;
    // Allocate before taking views of the heap: an allocation can grow (and so detach) it.
    const outFilter = backend.makeOutput(filter.shape, 'float32') as TensorInfo;
    const outBias = backend.makeOutput([co], 'float32') as TensorInfo;
    const [w, b, gamma, beta, mean, variance] = names.map((n) => (has(n) ? heap(backend, inputs[n]!) : null));
    const scale = new Float64Array(co);
    const ob = heap(backend, outBias);
    for (let c = 0; c < co; c++) {
      scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance![c]! + epsilon);
      ob[c] = ((b ? b[c]! : 0) - mean![c]!) * scale[c]! + (beta ? beta[c]! : 0);
    }
    const of = heap(backend, outFilter);
    for (let i = 0; i < of.length; i++) of[i] = w![i]! * scale[i % co]!;
    Object.assign(slot, { key, backend, filter: outFilter, bias: outBias });
  }
  backend.incRef(slot.filter!.dataId);
  backend.incRef(slot.bias!.dataId);
  return [{ ...slot.filter! }, { ...slot.bias! }];
}

/** The taps [begin, begin + size) of a filter [kh, kw, ci, co], from the slot while the filter is the same. */
function cropFilterKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { begin, size, slot } = attrs as unknown as CropAttrs;
  const filter = inputs.filter!;
  const sig = `${begin.join(',')}/${size.join(',')}`;
  if (slot.sig !== sig) {
    releaseFilterCache(slot);
    slot.sig = sig;
  }
  const { value } = cachedFilter(backend, filter, slot, () => run('Slice', { x: filter }, { begin: [begin[0], begin[1], 0, 0], size: [size[0], size[1], -1, -1] }, backend));
  backend.incRef(value.dataId);
  return { ...value };
}

/** The taps of `filter` the attrs keep (see CropAttrs); its gradient pads back with zeros. */
export function cropFilter(filter: tf.Tensor, attrs: CropAttrs): tf.Tensor {
  registerFusedOps();
  return tf.engine().runKernel(CROP_FILTER, { filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}


function fusedDense({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const x = inputs.x!;
  const kernel = inputs.kernel!;
  const [rows, k] = x.shape as [number, number];
  const units = kernel.shape[1]!;
  const out = run('_FusedMatMul', {
    a: { dataId: x.dataId, shape: [1, rows, k], dtype: x.dtype },
    b: { dataId: kernel.dataId, shape: [1, k, units], dtype: kernel.dtype },
    bias: inputs.bias,
  }, { transposeA: false, transposeB: false, activation: (attrs as unknown as DenseAttrs).activation }, backend);
  return { dataId: out.dataId, shape: [rows, units], dtype: out.dtype };
}

/**
 * dz · kernelᵀ, with kernelᵀ kept in the layer's cache from the second call on the same kernel:
 * through an attack's steps XNNPACK then multiplies by the same weights (packed once) instead of
 * packing a fresh transposed operand each step (BatchMatMul with transposeB; a conv run as a
 * dense product has a 1024x1024 kernel at ResNet-18's last stage, where that took a third longer
 * than the forward product). A kernel seen once (weights that change every call, as an FGSM-RS
 * training step's attack sees them) is not copied: building the cache costs more than one product.
 * Nor is a kernel above MAX_CACHED_KERNEL (a VGG-style 25088x4096 classifier would keep 400 MB).
 */
const MAX_CACHED_KERNEL = 1 << 24;
function denseInputGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, kernel } = inputs as { dy: TensorInfo; kernel: TensorInfo };
  const cache = attrs.kernelCache as FilterCache;
  const [rows, units] = dy.shape as [number, number];
  const k = kernel.shape[0]!;
  const a = { ...dy, shape: [1, rows, units] };
  let out: TensorInfo;
  const big = k * units > MAX_CACHED_KERNEL;
  if (big || ((cache.key !== kernel.dataId || cache.backend !== backend) && cache.seen !== kernel.dataId)) {
    cache.seen = kernel.dataId;
    out = run('BatchMatMul', { a, b: { ...kernel, shape: [1, k, units] } }, { transposeA: false, transposeB: true }, backend);
  } else {
    const { value: kT } = cachedFilter(backend, kernel, cache, () => run('Transpose', { x: kernel }, { perm: [1, 0] }, backend));
    out = run('BatchMatMul', { a, b: { ...kT, shape: [1, units, k] } }, { transposeA: false, transposeB: false }, backend);
  }
  return { dataId: out.dataId, shape: [rows, k], dtype: out.dtype };
}

function maxPool({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const a = attrs as unknown as PoolAttrs;
  return run('MaxPool', { x: inputs.x }, { filterSize: a.filterSize, strides: a.strides, pad: a.pad, dimRoundingMode: undefined }, backend);
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

/** dy masked by the activation whose output is y, in one pass (dy itself for linear). */
function activationGrad(dy: tf.Tensor, y: tf.Tensor, activation: Activation): tf.Tensor {
  if (activation === 'linear') return dy;
  if (activation === 'relu') return reluGrad(dy, y);
  return tf.engine().runKernel(ACT_GRAD, { dy, y }, { activation } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** Runs one of the ops above (for models/compiler). */
export function runFused(name: string, inputs: Record<string, tf.Tensor | undefined>, attrs: object): tf.Tensor {
  registerFusedOps();
  const named: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) if (v) named[k] = v;
  return tf.engine().runKernel(name, named, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** [filter', bias'] of a conv/dense followed by an inference batch norm (see the module comment). */
export function foldBatchNormWeights(inputs: { filter: tf.Tensor; bias?: tf.Tensor; gamma?: tf.Tensor; beta?: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor }, attrs: FoldAttrs): [tf.Tensor, tf.Tensor] {
  registerFusedOps();
  const co = inputs.mean.shape[0]!;
  const present = { bias: !!inputs.bias, gamma: !!inputs.gamma, beta: !!inputs.beta };
  const named = {
    filter: inputs.filter, bias: inputs.bias ?? tf.zeros([co]), gamma: inputs.gamma ?? tf.ones([co]), beta: inputs.beta ?? tf.zeros([co]),
    mean: inputs.mean, variance: inputs.variance,
  };
  return tf.engine().runKernel(FOLD_BATCH_NORM, named, { ...attrs, present } as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor];
}

/**
 * A conv's weights as a dense layer's from every input position to every output position
 * (kernels/expand_conv.ts): [W_big, the bias tiled] ([W_big] without a bias), differentiable in
 * both, kept in the attrs' slot while the filter and bias are unchanged.
 */
export function expandConvWeights(filter: tf.Tensor, bias: tf.Tensor | undefined, attrs: ExpandConvAttrs): tf.Tensor[] {
  registerFusedOps();
  return tf.engine().runKernel(EXPAND_CONV, bias ? { filter, bias } : { filter }, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
}

/**
 * Training-mode batch norm over the last axis (kernels/batch_norm_train.ts): [y, batch mean,
 * batch variance (biased)], differentiable in x, gamma and beta.
 */
export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): [tf.Tensor, tf.Tensor, tf.Tensor] {
  registerFusedOps();
  return tf.engine().runKernel(BATCH_NORM_TRAIN, { x, gamma, beta }, { epsilon }) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
}

let registered = false;

/** Registers the fused ops for wasm and their gradients (idempotent). */
export function registerFusedOps(): void {
  if (registered) return;
  const kernels: Array<[string, (a: KernelArgs) => TensorInfo]> = [
    [FUSED_CONV, fusedConv], [FUSED_DEPTHWISE, fusedDepthwise], [FUSED_DENSE, fusedDense], [FUSED_MAX_POOL, maxPool],
    [FUSED_CLAMP, clamp], [MAX_POOL_GRAD, maxPoolGradKernel], [RELU_GRAD, reluGradKernel], [ACT_GRAD, activationGradKernel],
    [DENSE_INPUT_GRAD, denseInputGrad],
  ];
  for (const [kernelName, fn] of kernels) {
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
  }
  tf.registerKernel({ kernelName: FOLD_BATCH_NORM, backendName: 'wasm', kernelFunc: foldBatchNorm as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: CROP_FILTER, backendName: 'wasm', kernelFunc: cropFilterKernel as unknown as tf.KernelFunc });
  tf.registerKernel(batchNormTrainConfig);
  tf.registerKernel(batchNormTrainGradConfig);
  tf.registerKernel(expandConvConfig);
  tf.registerKernel(expandConvGradConfig);

  // Conv and depthwise conv: the activation's mask (unless a max pool applied it), then the
  // backend's input and filter gradient kernels, each computed only when asked for.
  for (const [kernelName, inputGrad, filterGrad] of [
    [FUSED_CONV, 'Conv2DBackpropInput', 'Conv2DBackpropFilter'],
    [FUSED_DEPTHWISE, 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x', 'filter'],
      outputsToSave: [true],
      gradFunc: (dy, saved, attrs) => {
        const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const a = attrs as unknown as ConvAttrs;
        const dz = (a.maskedUpstream ? dy : activationGrad(dy as tf.Tensor, y, a.activation)) as tf.Tensor4D;
        const conv = { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
        return {
          x: () => tf.engine().runKernel(inputGrad, { dy: dz, filter }, { ...conv, inputShape: x.shape, filterCache: a.filterCache } as unknown as tf.NamedAttrMap) as tf.Tensor,
          filter: () => tf.engine().runKernel(filterGrad, { x, dy: dz }, { ...conv, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
          bias: () => tf.sum(dz, [0, 1, 2]),
        };
      },
    });
  }

  tf.registerGradient({
    kernelName: FUSED_DENSE,
    inputsToSave: ['x', 'kernel'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, kernel, y] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const a = attrs as unknown as DenseAttrs;
      const dz = activationGrad(dy as tf.Tensor, y, a.activation) as tf.Tensor2D;
      return {
        x: () => (a.kernelCache ? tf.engine().runKernel(DENSE_INPUT_GRAD, { dy: dz, kernel }, { kernelCache: a.kernelCache } as unknown as tf.NamedAttrMap) as tf.Tensor : tf.matMul(dz, kernel, false, true)),
        kernel: () => tf.matMul(x, dz, true, false),
        bias: () => tf.sum(dz, 0),
      };
    },
  });

  tf.registerGradient({
    kernelName: FUSED_CLAMP,
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [y] = saved as [tf.Tensor];
      return { x: () => activationGrad(dy as tf.Tensor, y, (attrs as unknown as ClampAttrs).activation) };
    },
  });

  tf.registerGradient({
    kernelName: FOLD_BATCH_NORM,
    inputsToSave: ['filter', 'bias', 'gamma', 'beta', 'mean', 'variance'],
    gradFunc: (dys, saved, attrs) => {
      const [filter, bias, gamma, , mean, variance] = saved as tf.Tensor[];
      const co = mean!.shape[0]!;
      // An output outside the differentiated graph arrives as null.
      const dW = (dys as Array<tf.Tensor | null>)[0] ?? tf.zerosLike(filter!);
      const db = (dys as Array<tf.Tensor | null>)[1] ?? tf.zeros([co]);
      const eps = (attrs as unknown as FoldAttrs).epsilon;
      const rstd = () => tf.rsqrt(tf.add(variance!, eps));
      const scale = () => tf.mul(gamma!, rstd());
      const dW2 = () => tf.reshape(dW, [-1, co]);
      // d/ds of W·s and (b − mean)·s: the column sums of dW'·W plus db'·(b − mean).
      const dScale = () => tf.add(tf.sum(tf.mul(dW2(), tf.reshape(filter!, [-1, co])), 0), tf.mul(db, tf.sub(bias!, mean!)));
      return {
        filter: () => tf.reshape(tf.mul(dW2(), scale()), filter!.shape),
        bias: () => tf.mul(db, scale()),
        beta: () => tf.clone(db),
        gamma: () => tf.mul(dScale(), rstd()),
        mean: () => tf.neg(tf.mul(db, scale())),
        variance: () => tf.mul(tf.mul(dScale(), gamma!), tf.mul(tf.pow(rstd(), 3), -0.5)),
      };
    },
  });

  // One pass of column sums (dbeta and dgamma), then dx from them in a second pass; the batch
  // statistics' own outputs carry no gradient.
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const dy = (dys as Array<tf.Tensor | null>)[0] ?? tf.zerosLike(x);
      const epsilon = (attrs as unknown as BatchNormTrainGradAttrs).epsilon;
      const c = mean.shape[0]!;
      const sums = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { dy, x, mean, variance }, { epsilon, want: 'sums' } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return {
        x: () => tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { dy, x, gamma, mean, variance, sums }, { epsilon, want: 'x' } as unknown as tf.NamedAttrMap) as tf.Tensor,
        gamma: () => tf.reshape(tf.slice(sums, [1, 0], [1, c]), [c]),
        beta: () => tf.reshape(tf.slice(sums, [0, 0], [1, c]), [c]),
      };
    },
  });

  tf.registerGradient({
    kernelName: CROP_FILTER,
    inputsToSave: ['filter'],
    gradFunc: (dy, saved, attrs) => {
      const [filter] = saved as [tf.Tensor4D];
      const { begin, size } = attrs as unknown as CropAttrs;
      const [kh, kw] = filter.shape;
      return { filter: () => tf.pad(dy as tf.Tensor4D, [[begin[0], kh - begin[0] - size[0]], [begin[1], kw - begin[1] - size[1]], [0, 0], [0, 0]]) };
    },
  });

  // W_big's gradient summed back onto the taps; the tiled bias's summed over the positions.
  tf.registerGradient({
    kernelName: EXPAND_CONV,
    inputsToSave: ['filter'],
    gradFunc: (dys, saved, attrs) => {
      const [filter] = saved as [tf.Tensor4D];
      const { slot: _slot, ...geometry } = attrs as unknown as ExpandConvAttrs;
      // One output (no bias) arrives as a tensor, two as an array.
      const [dBig, dBias] = (Array.isArray(dys) ? dys : [dys]) as Array<tf.Tensor | null>;
      const co = filter.shape[3];
      return {
        filter: () => (dBig ? tf.engine().runKernel(EXPAND_CONV_GRAD, { dy: dBig }, { ...geometry, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor : tf.zerosLike(filter)),
        bias: () => (dBias ? tf.sum(tf.reshape(dBias, [-1, co]), 0) : tf.zeros([co])),
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
