/**
 * Runs a compiled graph (ir.ts). Two ways, one graph:
 *
 * - fast (the wasm backend with advkit's kernels): convs, depthwise convs and dense layers as
 *   advkit's fused ops (backend/fused.ts) with bias, folded batch norm and ReLU/ReLU6 in one
 *   XNNPACK kernel and gradients that compute only what is asked for;
 * - plain (any other backend, or the benchmarks' baseline kernels): the same graph as tfjs ops.
 *
 * Training mode runs batch norm with batch statistics (moving averages updated; on the fast path
 * one wasm kernel each way) and Dropout as its layer. Convs on maps smaller than their reach drop
 * the taps that read only padding (tapCrop), and a conv on a map with fewer positions than its
 * filter has taps runs as one dense product over the positions (denseConv). Each intermediate is
 * released after its last use (the gradient tape keeps what it saved), so a forward pass holds
 * few activations at once.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_CLAMP, FUSED_CONV, FUSED_DENSE, FUSED_DEPTHWISE, FUSED_MAX_POOL, batchNormTrain, cropFilter, expandConvWeights, foldBatchNormWeights, newCropSlot, newFoldSlot, releaseFoldSlot, runFused, type CropSlot, type FoldSlot } from '../../backend/fused.js';
import { newExpandSlot, releaseExpandSlot, type ExpandGeometry, type ExpandSlot } from '../../backend/kernels/expand_conv.js';
import { newFilterCache, releaseFilterCache, type FilterCache } from '../../backend/kernels/heap.js';
import type { Activation, ActivationFn, BatchNormParams, Graph, Node, Op, Padding, Param } from './ir.js';

/**
 * Per-node state of a compiled graph: the fold slot of each layer with a folded batch norm, the
 * filter cache of each conv's or dense layer's input gradient, the cropped and the expanded
 * weights of each conv.
 */
export interface Runtime {
  slots: Map<number, FoldSlot>;
  filters: Map<number, FilterCache>;
  crops: Map<number, CropSlot>;
  expands: Map<number, ExpandSlot>;
}

/** Creates the runtime of `g` (no tensors: slots fill on first use, on the backend in use). */
export function createRuntime(g: Graph): Runtime {
  const rt: Runtime = { slots: new Map(), filters: new Map(), crops: new Map(), expands: new Map() };
  g.nodes.forEach((node, i) => {
    if ((node.op.kind === 'conv' || node.op.kind === 'dense') && node.op.bn) rt.slots.set(i, newFoldSlot());
    if (node.op.kind === 'conv' || node.op.kind === 'dense') rt.filters.set(i, newFilterCache());
    if (node.op.kind === 'conv') {
      rt.crops.set(i, newCropSlot());
      if (!node.op.depthwise) rt.expands.set(i, newExpandSlot());
    }
  });
  return rt;
}

export function disposeRuntime(rt: Runtime): void {
  for (const slot of rt.slots.values()) releaseFoldSlot(slot);
  for (const cache of rt.filters.values()) releaseFilterCache(cache);
  for (const slot of rt.crops.values()) releaseFilterCache(slot);
  for (const slot of rt.expands.values()) releaseExpandSlot(slot);
}

function explicitPad(pad: Padding): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  return typeof pad === 'string' ? pad : [[0, 0], pad[0], pad[1], [0, 0]];
}

/**
 * Training batch norm: batch statistics over every axis but the last, the moving averages
 * updated, y = x̂·gamma + beta with x̂ = (x − mean)/sqrt(var + eps). Its gradient is the closed
 * form dx = gamma/sqrt(var + eps) · (dy − mean(dy) − x̂·mean(dy·x̂)), dgamma = Σ dy·x̂,
 * dbeta = Σ dy. On the fast path that is kernels/batch_norm_train.ts (two passes each way);
 * elsewhere column sums and a few element-wise tfjs ops (tfjs' own batch-norm gradient tiles the
 * scale to the activation's shape; tf.mean's gradient multiplies by a full-size ones tensor).
 */
function batchNormTraining(x: tf.Tensor, bn: BatchNormParams, fast: boolean): tf.Tensor {
  const channels = x.shape[x.rank - 1]!;
  if (fast) {
    const [y, mean, variance] = batchNormTrain(x, bn.gamma?.read() ?? tf.ones([channels]), bn.beta?.read() ?? tf.zeros([channels]), bn.epsilon);
    bn.training!.update(mean, variance);
    return y;
  }
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const n = x.size / channels;
  const gamma = bn.gamma?.read() ?? tf.ones([channels]);
  const beta = bn.beta?.read() ?? tf.zeros([channels]);
  const op = tf.customGrad(((input: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const xt = input;
    const mean = tf.div(tf.sum(xt, axes), n);
    const centered = tf.sub(xt, mean);
    const variance = tf.div(tf.sum(tf.square(centered), axes), n);
    bn.training!.update(mean, variance);
    const rstd = tf.rsqrt(tf.add(variance, bn.epsilon));
    const xhat = tf.mul(centered, rstd);
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gm] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dbeta = tf.sum(dy, axes);
        const dgamma = tf.sum(tf.mul(dy, xh), axes);
        const dx = tf.mul(tf.mul(gm, rs), tf.sub(tf.sub(dy, tf.div(dbeta, n)), tf.mul(xh, tf.div(dgamma, n))));
        return [dx, dgamma, dbeta];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  return op(x, gamma, beta);
}

/** Inference batch norm as a per-channel affine map (its gradient never tiles). */
function batchNormAffine(x: tf.Tensor, bn: BatchNormParams): tf.Tensor {
  const rstd = tf.rsqrt(tf.add(bn.variance.read(), bn.epsilon));
  const scale = bn.gamma ? tf.mul(bn.gamma.read(), rstd) : rstd;
  const shifted = tf.mul(tf.sub(x, bn.mean.read()), scale);
  return bn.beta ? tf.add(shifted, bn.beta.read()) : shifted;
}

/** A layer's activation: a fused clamp on the fast path, tfjs' relu/relu6 otherwise; x for linear. */
function layerActivation(x: tf.Tensor, act: Activation, fast: boolean): tf.Tensor {
  if (act === 'linear') return x;
  if (fast) return runFused(FUSED_CLAMP, { x }, { activation: act });
  return act === 'relu' ? tf.relu(x) : tf.relu6(x);
}

/** A conv's filter or a dense layer's kernel. */
function layerWeight(op: LayerOp): tf.Tensor {
  return op.kind === 'dense' ? op.kernel.read() : op.filter.read();
}

const SQRT1_2 = Math.SQRT1_2;
/** Activations as tfjs ops, with tfjs-layers' definitions. */
function activation(x: tf.Tensor, fn: ActivationFn, alpha: number | undefined, fast: boolean, slopes?: Param): tf.Tensor {
  switch (fn) {
    case 'linear': return tf.clone(x);
    case 'relu':
    case 'relu6': return layerActivation(x, fn, fast);
    case 'sigmoid': return tf.sigmoid(x);
    case 'tanh': return tf.tanh(x);
    case 'softmax': return tf.softmax(x);
    case 'elu': return tf.elu(x);
    case 'selu': return tf.selu(x);
    case 'softplus': return tf.softplus(x);
    case 'softsign': return tf.div(x, tf.add(tf.abs(x), 1));
    case 'swish': return tf.mul(x, tf.sigmoid(x));
    case 'hard_sigmoid': return tf.clipByValue(tf.add(tf.mul(x, 0.2), 0.5), 0, 1);
    case 'hard_swish': return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
    case 'leaky_relu': return tf.leakyRelu(x, alpha ?? 0.3);
    case 'gelu': return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, SQRT1_2))));
    case 'gelu_new': return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
    case 'mish': return tf.mul(x, tf.tanh(tf.softplus(x)));
    case 'exp': return tf.exp(x);
    case 'erf': return tf.erf(x);
    case 'prelu': return tf.prelu(x, slopes!.read());
    case 'thresholded_relu': return thresholdedRelu(x, alpha ?? 1);
  }
}

/**
 * x · (x > theta), tfjs-layers' ThresholdedReLU, with its gradient dy · (x > theta): tfjs has no
 * gradient for Greater, so the layer itself cannot be differentiated (an attack through it throws).
 */
function thresholdedRelu(x: tf.Tensor, theta: number): tf.Tensor {
  const op = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const mask = tf.cast(tf.greater(input, theta), 'float32');
    save([mask]);
    return { value: tf.mul(input, mask), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]!) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (input: tf.Tensor) => tf.Tensor;
  return op(x);
}

function binary(fn: 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min', a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'add': return tf.add(a, b);
    case 'sub': return tf.sub(a, b);
    case 'mul': return tf.mul(a, b);
    case 'div': return tf.div(a, b);
    case 'max': return tf.maximum(a, b);
    case 'min': return tf.minimum(a, b);
  }
}

type LayerOp = Extract<Op, { kind: 'conv' | 'dense' }>;

/** Weights of a conv/dense, with its inference batch norm folded in (fast path). */
function foldedWeights(op: LayerOp, i: number, rt: Runtime): { w: tf.Tensor; b?: tf.Tensor } {
  const w = layerWeight(op);
  const bias = op.bias?.read();
  if (!op.bn) return { w, b: bias };
  const [fw, fb] = foldBatchNormWeights({
    filter: w, bias, gamma: op.bn.gamma?.read(), beta: op.bn.beta?.read(), mean: op.bn.mean.read(), variance: op.bn.variance.read(),
  }, { epsilon: op.bn.epsilon, slot: rt.slots.get(i)! });
  return { w: fw, b: fb };
}

/**
 * A dilated filter written out: zeros between the taps, so that a conv with it and dilation 1
 * equals the dilated conv ('same' padding is computed from the effective size either way).
 * tfjs has no gradient for dilated convs; pad, reshape and slice do, so dilated layers can be
 * attacked and trained.
 */
function dilateFilter(w: tf.Tensor, [dh, dw]: [number, number]): tf.Tensor {
  if (dh === 1 && dw === 1) return w;
  const [kh, kw, cin, cout] = w.shape as [number, number, number, number];
  const spread = tf.pad(tf.reshape(w, [kh, 1, kw, 1, cin, cout]), [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]);
  return tf.slice(tf.reshape(spread, [kh * dh, kw * dw, cin, cout]), [0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, cin, cout]);
}

/**
 * One spatial axis of a conv with `out` outputs and `before` padding: the taps some output reads
 * inside the input, and the padding that keeps `out` outputs with only those taps.
 */
function axisTaps(size: number, k: number, s: number, before: number, out: number): { first: number; count: number; pad: [number, number] } | null {
  let first = -1;
  let last = -1;
  for (let p = 0; p < k; p++) {
    for (let o = 0; o < out; o++) {
      const r = o * s + p - before;
      if (r >= 0 && r < size) {
        if (first < 0) first = p;
        last = p;
        break;
      }
    }
  }
  if (first < 0) return null;
  const count = last - first + 1;
  const top = before - first;
  const bottom = (out - 1) * s + count - size - top;
  return top >= 0 && bottom >= 0 ? { first, count, pad: [top, bottom] } : null;
}

/**
 * Taps that only ever read padding (a 3x3 'same' conv on a 1x1 map reads only its centre; a
 * 7x7 on 4x4 reads its middle 5x5 at most) are dropped: the filter is cropped to the taps some
 * output reads and the padding shrunk to match, so the conv and its gradients skip multiplying
 * zeros. The output and the gradients are unchanged (the dropped taps' weight gradient is 0).
 * Null when every tap is read or for 'valid' padding (every tap is then read). Output sizes and
 * padding are tfjs' own (computeConv2DInfo).
 */
function tapCrop(op: Extract<Op, { kind: 'conv' }>, x: tf.Tensor, filterShape: number[]): { begin: [number, number]; size: [number, number]; pad: [[number, number], [number, number]] } | null {
  if (op.pad === 'valid') return null;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape as [number, number, number, number],
    op.strides, 1, explicitPad(op.pad), undefined, op.depthwise);
  const rows = axisTaps(info.inHeight, info.filterHeight, info.strideHeight, info.padInfo.top, info.outHeight);
  const cols = axisTaps(info.inWidth, info.filterWidth, info.strideWidth, info.padInfo.left, info.outWidth);
  if (!rows || !cols || (rows.count === info.filterHeight && cols.count === info.filterWidth)) return null;
  return { begin: [rows.first, cols.first], size: [rows.count, cols.count], pad: [rows.pad, cols.pad] };
}

/** Weights of a dense product over the positions above which a conv's takes its place (16M floats, 64 MB). */
const MAX_EXPANDED = 1 << 24;

/**
 * The geometry for running a conv (after tapCrop) as x [N, inH·inW·ci] · W_big (see
 * kernels/expand_conv.ts), when that multiplies less than the conv does: the map has fewer
 * positions than the filter has taps (a 3x3 conv on 2x2, a 5x5 on 3x3), and W_big is not
 * larger than MAX_EXPANDED. Null otherwise, and for depthwise convs (per channel there is no GEMM).
 */
function denseConv(x: tf.Tensor, filterShape: number[], strides: [number, number], pad: Padding): ExpandGeometry | null {
  const [kh, kw, ci, co] = filterShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape as [number, number, number, number], strides, 1, explicitPad(pad));
  const positions = info.inHeight * info.inWidth;
  if (positions >= kh * kw || positions * ci * info.outHeight * info.outWidth * co > MAX_EXPANDED) return null;
  return { inH: info.inHeight, inW: info.inWidth, outH: info.outHeight, outW: info.outWidth, strides, top: info.padInfo.top, left: info.padInfo.left };
}

function runLayer(op: LayerOp, i: number, h: tf.Tensor, training: boolean, fast: boolean, rt: Runtime): tf.Tensor {
  // A conv's filter with its dilation written out and, when the input is small, cropped to the taps that read it.
  const convFilter = (o: Extract<Op, { kind: 'conv' }>, w: tf.Tensor): { filter: tf.Tensor; pad: Padding } => {
    const full = dilateFilter(w, o.dilations);
    const crop = tapCrop(o, h, full.shape);
    if (!crop) return { filter: full, pad: o.pad };
    const filter = fast ? cropFilter(full, { begin: crop.begin, size: crop.size, slot: rt.crops.get(i)! }) : tf.slice(full, [crop.begin[0], crop.begin[1], 0, 0], [crop.size[0], crop.size[1], -1, -1]);
    return { filter, pad: crop.pad };
  };
  if (fast) {
    const fused = (w: tf.Tensor, b: tf.Tensor | undefined, act: Activation) => {
      // The transposed kernel is cached for inference (an attack's steps); in training the weights change every step.
      const kernelCache = training ? undefined : rt.filters.get(i);
      if (op.kind === 'dense') return runFused(FUSED_DENSE, { x: h, kernel: w, bias: b }, { activation: act, kernelCache });
      const { filter, pad } = convFilter(op, w);
      const dense = op.depthwise ? null : denseConv(h, filter.shape, op.strides, pad);
      if (dense) {
        const [big, tiled] = expandConvWeights(filter, b, { ...dense, slot: rt.expands.get(i)! });
        const y = runFused(FUSED_DENSE, { x: tf.reshape(h, [h.shape[0]!, -1]), kernel: big!, bias: tiled }, { activation: act, kernelCache });
        return tf.reshape(y, [h.shape[0]!, dense.outH, dense.outW, filter.shape[3]!]);
      }
      return runFused(op.depthwise ? FUSED_DEPTHWISE : FUSED_CONV, { x: h, filter, bias: b },
        { strides: op.strides, pad: explicitPad(pad), activation: act, maskedUpstream: act === 'relu' && op.maskedByPool === true, filterCache: rt.filters.get(i) });
    };
    if (training && op.bn?.training) {
      // Batch statistics: the layer stays fused, the batch norm and activation follow it.
      const z = fused(layerWeight(op), op.bias?.read(), 'linear');
      return layerActivation(batchNormTraining(z, op.bn, true), op.act, true);
    }
    const { w, b } = foldedWeights(op, i, rt);
    return fused(w, b, op.act);
  }
  let y: tf.Tensor;
  if (op.kind === 'dense') {
    y = tf.matMul(h as tf.Tensor2D, op.kernel.read() as tf.Tensor2D);
  } else {
    const c = convFilter(op, op.filter.read());
    const pad = explicitPad(c.pad);
    const filter = c.filter as tf.Tensor4D;
    y = op.depthwise ? tf.depthwiseConv2d(h as tf.Tensor4D, filter, op.strides, pad) : tf.conv2d(h as tf.Tensor4D, filter, op.strides, pad);
  }
  if (op.bias) y = tf.add(y, op.bias.read());
  if (op.bn) y = training && op.bn.training ? batchNormTraining(y, op.bn, fast) : batchNormAffine(y, op.bn);
  return layerActivation(y, op.act, fast);
}

function runNode(node: Node, i: number, xs: tf.Tensor[], training: boolean, fast: boolean, rt: Runtime): tf.Tensor {
  const op = node.op;
  const h = xs[0]!;
  switch (op.kind) {
    case 'input': return h;
    case 'conv': return runLayer(op, i, h, training, fast, rt);
    case 'dense': {
      if (h.rank === 2) return runLayer(op, i, h, training, fast, rt);
      // Dense on a higher rank acts on the last axis (Keras): rows are every leading position.
      const y = runLayer(op, i, tf.reshape(h, [-1, h.shape[h.rank - 1]!]), training, fast, rt);
      return tf.reshape(y, [...h.shape.slice(0, -1), y.shape[1]!]);
    }
    case 'batchnorm': return training && op.bn.training ? batchNormTraining(h, op.bn, fast) : batchNormAffine(h, op.bn);
    case 'act': return op.fn === 'hard_sigmoid' && (op.alpha !== undefined || op.beta !== undefined) ? tf.clipByValue(tf.add(tf.mul(h, op.alpha ?? 0.2), op.beta ?? 0.5), 0, 1) : activation(h, op.fn, op.alpha, fast, op.slopes);
    case 'binary': return xs.slice(1).reduce((acc, b) => binary(op.fn, acc, b), h);
    case 'const-binary': return op.constFirst ? binary(op.fn, op.value.read(), h) : binary(op.fn, h, op.value.read());
    case 'affine': return tf.add(tf.mul(h, op.scale), op.offset);
    case 'concat': return tf.concat(xs, op.axis);
    case 'pad': return tf.pad(h, [[0, 0], op.pads[0], op.pads[1], [0, 0]], op.value ?? 0);
    case 'crop': {
      const [, H, W] = h.shape as number[];
      return tf.slice(h, [0, op.crop[0][0], op.crop[1][0], 0], [-1, H! - op.crop[0][0] - op.crop[0][1], W! - op.crop[1][0] - op.crop[1][1], -1]);
    }
    case 'pool':
      if (op.type === 'avg') return tf.avgPool(h as tf.Tensor4D, op.filterSize, op.strides, op.pad);
      if (fast) return runFused(FUSED_MAX_POOL, { x: h }, { filterSize: op.filterSize, strides: op.strides, pad: op.pad, reluInput: op.reluInput === true });
      return tf.maxPool(h as tf.Tensor4D, op.filterSize, op.strides, op.pad);
    case 'shuffle': {
      const c = h.shape[h.rank - 1]!;
      const lead = h.shape.slice(0, -1) as number[];
      return tf.reshape(tf.transpose(tf.reshape(h, [...lead, op.groups, c / op.groups]), [...lead.map((_, i) => i), lead.length + 1, lead.length]), h.shape);
    }
    case 'slice': return tf.slice(h, [...Array(h.rank - 1).fill(0), op.begin], [...Array(h.rank - 1).fill(-1), op.size]);
    case 'reduce': return op.type === 'mean' ? tf.mean(h, op.axes, op.keepDims) : tf.max(h, op.axes, op.keepDims);
    case 'reshape': return tf.reshape(op.channelsFirst ? tf.transpose(h, [0, 3, 1, 2]) : h, [h.shape[0]!, ...op.shape]);
    case 'squeeze': return tf.squeeze(h, op.axes);
    case 'identity': return tf.clone(h);
    case 'dropout': return training ? op.train(h) : tf.clone(h);
    case 'fallback': return op.run(xs, training);
  }
}

/**
 * The graph's output (the logits node) for input `x`. Must run inside a tidy (the caller's);
 * intermediates are disposed as soon as nothing else needs them.
 */
export function execute(g: Graph, x: tf.Tensor, training: boolean, fast: boolean, rt: Runtime): tf.Tensor {
  const remaining = new Array<number>(g.nodes.length).fill(0);
  for (const n of g.nodes) for (const j of n.inputs) remaining[j]!++;
  const values: Array<tf.Tensor | undefined> = new Array(g.nodes.length);
  for (let i = 0; i < g.nodes.length; i++) {
    const node = g.nodes[i]!;
    const xs = node.op.kind === 'input' ? [x] : node.inputs.map((j) => values[j]!);
    let y = runNode(node, i, xs, training, fast, rt);
    // Every node owns its tensor, so releasing one never frees another's.
    if (xs.includes(y)) y = tf.clone(y);
    values[i] = y;
    if (i === g.output) break;
    for (const j of node.inputs) {
      if (--remaining[j]! === 0 && j !== g.output) {
        values[j]!.dispose();
        values[j] = undefined;
      }
    }
  }
  return values[g.output]!;
}
