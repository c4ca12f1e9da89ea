/**
 * Fixtures for the compiler tests: batch-norm statistics and biases set to seeded random values
 * (fresh layers have mean 0 / variance 1, which would make folding trivially exact), and
 * GraphModels written by hand in the converter's JSON format.
 */
import * as tf from '@tensorflow/tfjs';
import { uniform } from '../helpers.js';

/** Gives every BatchNormalization layer and every bias seeded non-trivial values. */
export function randomizeStatistics(model: tf.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    const weights = layer.weights;
    if (weights.length === 0) continue;
    const values = layer.getWeights().map((w, i) => {
      const name = weights[i]!.originalName;
      const n = w.size;
      const pick = (lo: number, hi: number) => tf.tensor(uniform(n, s++, lo, hi), w.shape);
      if (/gamma|moving_variance/.test(name)) return pick(0.5, 1.5);
      if (/beta|moving_mean|bias/.test(name)) return pick(-0.2, 0.2);
      return w.clone();
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/**
 * One training call of `m` through `f` on a seeded batch: [loss, every trainable weight's
 * gradient, the moving averages after the call], the loss sum(f(x) · r) with r seeded too.
 */
export function trainingCall(m: tf.LayersModel, f: (t: tf.Tensor) => tf.Tensor, shape: readonly [number, number, number], batch: number): () => tf.Tensor[] {
  return () => {
    const x = tf.tensor4d(uniform(batch * shape[0] * shape[1] * shape[2], 31, 0, 1), [batch, ...shape]);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const units = m.outputs[0]!.shape[1] as number;
    const r = tf.tensor(uniform(batch * units, 32), [batch, units]);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(f(x), r)) as tf.Scalar, vars);
    const stats = m.weights.filter((w) => /moving/.test(w.originalName)).map((w) => tf.clone(w.read()));
    return [value, ...vars.map((v) => grads[v.name]!), ...stats];
  };
}

export const b64 = (s: string) => Buffer.from(s).toString('base64');
const ints = (v: number[]) => ({ list: { i: v.map(String) } });
export const strs = (v: string[]) => ({ list: { s: v.map(b64) } });

export interface ConstSpec { name: string; shape: number[]; values: Float32Array | Int32Array; dtype?: 'float32' | 'int32' }

/** A GraphModel from nodes and constants, through tf.loadGraphModel as a user would load one. */
export async function graphModel(nodes: object[], consts: ConstSpec[], input: { name: string; shape: number[]; dtype?: 'DT_FLOAT' | 'DT_INT32' | 'DT_UINT8' }): Promise<tf.GraphModel> {
  const weightSpecs = consts.map((c) => ({ name: c.name, shape: c.shape, dtype: c.dtype ?? 'float32' }));
  const total = consts.reduce((a, c) => a + c.values.byteLength, 0);
  const buf = new Uint8Array(total);
  let off = 0;
  for (const c of consts) {
    buf.set(new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength), off);
    off += c.values.byteLength;
  }
  const constNodes = consts.map((c) => ({ name: c.name, op: 'Const', attr: { dtype: { type: c.dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: c.dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT', tensorShape: { dim: c.shape.map((d) => ({ size: String(d) })) } } } } }));
  const placeholder = { name: input.name, op: 'Placeholder', attr: { dtype: { type: input.dtype ?? 'DT_FLOAT' }, shape: { shape: { dim: input.shape.map((d) => ({ size: String(d) })) } } } };
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: { node: [placeholder, ...constNodes, ...nodes], library: {}, versions: { producer: 1 } },
    format: 'graph-model', generatedBy: 'advkit tests', convertedBy: 'hand',
    weightSpecs, weightData: buf.buffer,
  };
  return tf.loadGraphModel(tf.io.fromMemory(artifacts));
}

export function conv(name: string, op: string, inputs: string[], o: { strides?: number; padding?: string; fused?: string[]; explicit?: number[]; leakyAlpha?: number }): object {
  const attr: Record<string, unknown> = {
    T: { type: 'DT_FLOAT' }, strides: ints([1, o.strides ?? 1, o.strides ?? 1, 1]), padding: { s: b64(o.padding ?? 'SAME') },
    data_format: { s: b64('NHWC') }, dilations: ints([1, 1, 1, 1]),
  };
  if (o.fused) { attr.fused_ops = strs(o.fused); attr.num_args = { i: String(inputs.length - 2) }; attr.epsilon = { f: 0 }; }
  if (o.explicit) attr.explicit_paddings = ints(o.explicit);
  if (o.leakyAlpha !== undefined) attr.leakyrelu_alpha = { f: o.leakyAlpha };
  return { name, op, input: inputs, attr };
}

const f32 = (n: number, seed: number, lo = -0.5, hi = 0.5) => uniform(n, seed, lo, hi);

/**
 * A converter-style image classifier on 8x8x3 inputs: _FusedConv2D (BiasAdd, Relu6, stride 2,
 * explicit padding), FusedDepthwiseConv2dNative (BiasAdd, Relu), Conv2D + FusedBatchNormV3 + Relu,
 * AddV2 (residual), Mean over H, W, _FusedMatMul (BiasAdd), then `head`: 'softmax' (Softmax over
 * 4 classes), 'sigmoid' (one Sigmoid unit), 'logits', or 'neg' (a Neg op the compiler does not
 * know, before the logits).
 */
export async function converterClassifier(head: 'softmax' | 'sigmoid' | 'logits' | 'neg' | 'transposed' | 'flatten' | 'leaky', seed = 1): Promise<tf.GraphModel> {
  // 'leaky': the first conv fuses LeakyRelu (alpha 0.1), the depthwise fuses Prelu, and a
  // standalone Prelu op follows the batch norm.
  const leaky = head === 'leaky';
  const units = head === 'sigmoid' ? 1 : 4;
  // 'flatten': Keras' Flatten as TF2 exports it with an unknown batch, reshape(x, [shape(x)[0], -1]).
  const features = head === 'flatten' ? 4 * 4 * 8 : 8;
  const consts: ConstSpec[] = [
    { name: 'c1/w', shape: [3, 3, 3, 8], values: f32(216, seed) },
    { name: 'c1/b', shape: [8], values: f32(8, seed + 1) },
    { name: 'dw/w', shape: [3, 3, 8, 1], values: f32(72, seed + 2) },
    { name: 'dw/b', shape: [8], values: f32(8, seed + 3) },
    { name: 'pw/w', shape: [1, 1, 8, 8], values: f32(64, seed + 4) },
    { name: 'bn/scale', shape: [8], values: f32(8, seed + 5, 0.5, 1.5) },
    { name: 'bn/offset', shape: [8], values: f32(8, seed + 6) },
    { name: 'bn/mean', shape: [8], values: f32(8, seed + 7, -0.2, 0.2) },
    { name: 'bn/var', shape: [8], values: f32(8, seed + 8, 0.5, 1.5) },
    ...(head === 'flatten' ? [] : [{ name: 'mean/axes', shape: [2], values: new Int32Array([1, 2]), dtype: 'int32' as const }]),
    // 'transposed': the dense weights stored [units, 8] and read with MatMul's transpose_b.
    { name: 'fc/w', shape: head === 'transposed' ? [units, 8] : [features, units], values: f32(features * units, seed + 9) },
    ...(head === 'flatten' ? [
      { name: 'flat/begin', shape: [1], values: new Int32Array([0]), dtype: 'int32' as const },
      { name: 'flat/end', shape: [1], values: new Int32Array([1]), dtype: 'int32' as const },
      { name: 'flat/strides', shape: [1], values: new Int32Array([1]), dtype: 'int32' as const },
      { name: 'flat/rest', shape: [], values: new Int32Array([-1]), dtype: 'int32' as const },
    ] : []),
    { name: 'fc/b', shape: [units], values: f32(units, seed + 10) },
    ...(leaky ? [
      { name: 'dw/alpha', shape: [8], values: f32(8, seed + 11, 0.05, 0.5) },
      { name: 'bn/alpha', shape: [8], values: f32(8, seed + 12, 0.05, 0.5) },
    ] : []),
  ];
  const nodes: object[] = [
    conv('c1', '_FusedConv2D', ['x', 'c1/w', 'c1/b'], { strides: 2, padding: 'EXPLICIT', explicit: [0, 0, 0, 1, 0, 1, 0, 0], fused: ['BiasAdd', leaky ? 'LeakyRelu' : 'Relu6'], leakyAlpha: leaky ? 0.1 : undefined }),
    conv('dw', 'FusedDepthwiseConv2dNative', leaky ? ['c1', 'dw/w', 'dw/b', 'dw/alpha'] : ['c1', 'dw/w', 'dw/b'], { fused: ['BiasAdd', leaky ? 'Prelu' : 'Relu'] }),
    conv('pw', 'Conv2D', ['dw', 'pw/w'], {}),
    { name: 'bn', op: 'FusedBatchNormV3', input: ['pw', 'bn/scale', 'bn/offset', 'bn/mean', 'bn/var'], attr: { epsilon: { f: 0.001 }, data_format: { s: b64('NHWC') }, is_training: { b: false } } },
    leaky ? { name: 'bn_relu', op: 'Prelu', input: ['bn', 'bn/alpha'] } : { name: 'bn_relu', op: 'Relu', input: ['bn'] },
    { name: 'res', op: 'AddV2', input: ['bn_relu', 'c1'] },
    ...(head === 'flatten' ? [
      { name: 'flat/Shape', op: 'Shape', input: ['res'], attr: { out_type: { type: 'DT_INT32' }, T: { type: 'DT_FLOAT' } } },
      { name: 'flat/strided_slice', op: 'StridedSlice', input: ['flat/Shape', 'flat/begin', 'flat/end', 'flat/strides'],
        attr: { T: { type: 'DT_INT32' }, Index: { type: 'DT_INT32' }, begin_mask: { i: '0' }, end_mask: { i: '0' }, ellipsis_mask: { i: '0' }, new_axis_mask: { i: '0' }, shrink_axis_mask: { i: '1' } } },
      { name: 'flat/Reshape/shape', op: 'Pack', input: ['flat/strided_slice', 'flat/rest'], attr: { T: { type: 'DT_INT32' }, N: { i: '2' }, axis: { i: '0' } } },
      { name: 'gap', op: 'Reshape', input: ['res', 'flat/Reshape/shape'], attr: { T: { type: 'DT_FLOAT' }, Tshape: { type: 'DT_INT32' } } },
    ] : [{ name: 'gap', op: 'Mean', input: ['res', 'mean/axes'], attr: { keep_dims: { b: false } } }]),
    { name: 'fc', op: '_FusedMatMul', input: ['gap', 'fc/w', 'fc/b'], attr: { transpose_a: { b: false }, transpose_b: { b: head === 'transposed' }, fused_ops: strs(['BiasAdd']), num_args: { i: '1' } } },
  ];
  let last = 'fc';
  if (head === 'neg') {
    nodes.push({ name: 'neg', op: 'Neg', input: ['fc'] });
    last = 'neg';
  }
  if (head === 'softmax') {
    nodes.push({ name: 'probs', op: 'Softmax', input: ['fc'] });
    last = 'probs';
  }
  if (head === 'sigmoid') {
    nodes.push({ name: 'score', op: 'Sigmoid', input: ['fc'] });
    last = 'score';
  }
  nodes.push({ name: 'Identity', op: 'Identity', input: [last] });
  return graphModel(nodes, consts, { name: 'x', shape: [-1, 8, 8, 3] });
}
