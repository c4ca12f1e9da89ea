/**
 * Fixtures for the compiler tests: batch-norm statistics and biases set to seeded random values
 * (fresh layers have mean 0 / variance 1, which would make folding trivially exact), and
 * GraphModels written by hand in the converter's JSON format.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
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

/**
 * The TensorFlow.js converter's output for a TF2 SavedModel (its default): every op and weight
 * under `StatefulPartitionedCall/model/...`, each output read through an `Identity`, `Identity_1`,
 * ... node, and a `signature` whose keys are not node names (output key `activation_6` is tensor
 * `Identity:0`; the input key may differ from the placeholder, as `images` for
 * `serving_default_images`). Batch dimensions are -1.
 */
export interface Tf2Form {
  /** The signature key of the input (default: the placeholder's name). */
  inputKey?: string;
  /** The placeholder's name (default: the fixture's input name). */
  placeholder?: string;
  /** Each output: its signature key, the (fixture) node it reads, its units. */
  outputs: Array<{ key: string; node: string; units: number }>;
}

const TF2_SCOPE = 'StatefulPartitionedCall/model/';

function tf2Form(nodes: object[], consts: ConstSpec[], input: { name: string; shape: number[] }, form: Tf2Form): { nodes: object[]; consts: ConstSpec[]; placeholder: string; signature: object } {
  const placeholder = form.placeholder ?? input.name;
  const rename = (ref: string): string => {
    const control = ref.startsWith('^') ? '^' : '';
    const [name, slot] = (control ? ref.slice(1) : ref).split(':');
    const renamed = name === input.name ? placeholder : TF2_SCOPE + name;
    return `${control}${renamed}${slot !== undefined ? `:${slot}` : ''}`;
  };
  const body = (nodes as Array<{ name: string; input?: string[] }>).filter((n) => n.name !== 'Identity')
    .map((n) => ({ ...n, name: TF2_SCOPE + n.name, ...(n.input ? { input: n.input.map(rename) } : {}) }));
  const outputs = form.outputs.map((o, k) => ({ name: k === 0 ? 'Identity' : `Identity_${k}`, op: 'Identity', input: [rename(o.node)], attr: { T: { type: 'DT_FLOAT' } } }));
  const dims = (shape: number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });
  const signature = {
    inputs: { [form.inputKey ?? placeholder]: { name: `${placeholder}:0`, dtype: 'DT_FLOAT', tensorShape: dims(input.shape) } },
    outputs: Object.fromEntries(form.outputs.map((o, k) => [o.key, { name: `${outputs[k]!.name}:0`, dtype: 'DT_FLOAT', tensorShape: dims([-1, o.units]) }])),
  };
  return { nodes: [...body, ...outputs], consts: consts.map((c) => ({ ...c, name: TF2_SCOPE + c.name })), placeholder, signature };
}

/** The artifacts (model.json and weights) of a GraphModel from nodes and constants, in the plain or the TF2 form. */
export function graphArtifacts(nodes: object[], consts: ConstSpec[], input: { name: string; shape: number[]; dtype?: 'DT_FLOAT' | 'DT_INT32' | 'DT_UINT8' }, tf2?: Tf2Form): tf.io.ModelArtifacts {
  let placeholderName = input.name;
  let signature: object | undefined;
  if (tf2) ({ nodes, consts, placeholder: placeholderName, signature } = tf2Form(nodes, consts, input, tf2));
  const weightSpecs = consts.map((c) => ({ name: c.name, shape: c.shape, dtype: c.dtype ?? 'float32' }));
  const total = consts.reduce((a, c) => a + c.values.byteLength, 0);
  const buf = new Uint8Array(total);
  let off = 0;
  for (const c of consts) {
    buf.set(new Uint8Array(c.values.buffer, c.values.byteOffset, c.values.byteLength), off);
    off += c.values.byteLength;
  }
  const constNodes = consts.map((c) => ({ name: c.name, op: 'Const', attr: { dtype: { type: c.dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: c.dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT', tensorShape: { dim: c.shape.map((d) => ({ size: String(d) })) } } } } }));
  const placeholder = { name: placeholderName, op: 'Placeholder', attr: { dtype: { type: input.dtype ?? 'DT_FLOAT' }, shape: { shape: { dim: input.shape.map((d) => ({ size: String(d) })) } } } };
  return {
    modelTopology: { node: [placeholder, ...constNodes, ...nodes], library: {}, versions: { producer: tf2 ? 1286 : 1 } },
    format: 'graph-model', generatedBy: tf2 ? '2.15.0' : 'advkit tests', convertedBy: tf2 ? 'TensorFlow.js Converter v4.22.0' : 'hand',
    ...(signature ? { signature } : {}),
    weightSpecs, weightData: buf.buffer,
  };
}

/** A GraphModel from nodes and constants, through tf.loadGraphModel as a user would load one. */
export async function graphModel(nodes: object[], consts: ConstSpec[], input: { name: string; shape: number[]; dtype?: 'DT_FLOAT' | 'DT_INT32' | 'DT_UINT8' }, tf2?: Tf2Form): Promise<tf.GraphModel> {
  return tf.loadGraphModel(tf.io.fromMemory(graphArtifacts(nodes, consts, input, tf2)));
}

/** Writes artifacts as the converter lays a model directory out: model.json and one weight shard. */
export async function writeGraphModel(dir: string, artifacts: tf.io.ModelArtifacts): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const shard = 'group1-shard1of1.bin';
  await fsp.writeFile(path.join(dir, shard), new Uint8Array(artifacts.weightData as ArrayBuffer));
  const json = {
    format: artifacts.format, generatedBy: artifacts.generatedBy, convertedBy: artifacts.convertedBy,
    ...(artifacts.signature ? { signature: artifacts.signature } : {}),
    modelTopology: artifacts.modelTopology, weightsManifest: [{ paths: [shard], weights: artifacts.weightSpecs }],
  };
  await fsp.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
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
export async function converterClassifier(head: ConverterHead, seed = 1, form: 'plain' | 'tf2' = 'plain'): Promise<tf.GraphModel> {
  return tf.loadGraphModel(tf.io.fromMemory(converterArtifacts(head, seed, form)));
}

export type ConverterHead = 'softmax' | 'sigmoid' | 'logits' | 'neg' | 'transposed' | 'flatten' | 'leaky';

/** converterClassifier's artifacts; in the TF2 form its output key is `activation_6` (a sigmoid) or `dense_1`, its input key `images`. */
export function converterArtifacts(head: ConverterHead, seed = 1, form: 'plain' | 'tf2' = 'plain'): tf.io.ModelArtifacts {
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
  const tf2 = form === 'tf2' ? { inputKey: 'images', placeholder: 'serving_default_images', outputs: [{ key: head === 'sigmoid' ? 'activation_6' : 'dense_1', node: last, units }] } : undefined;
  return graphArtifacts(nodes, consts, { name: 'x', shape: [-1, 8, 8, 3] }, tf2);
}
