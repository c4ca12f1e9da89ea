/** The random model families (LayersModels and converter-style GraphModels) the compiler and the onnxruntime backend are tested on. */
import { Rng } from '../../src/util/random.js';
import { tf, uniform } from '../helpers.js';
import { conv, graphModel, b64, strs, type ConstSpec } from './compiler_fixtures.js';

type S = tf.SymbolicTensor;
const ACTS = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'elu', 'selu', 'softplus', 'softsign', 'swish', 'hardSigmoid', 'mish', 'gelu'];

/**
 * A random functional model: 3-8 layers drawn from the compiler's vocabulary (convs with random
 * kernels, strides, padding, dilation, bias and activation; depthwise and separable convs; batch
 * norm with or without centre and scale; activation layers; padding and cropping; pooling; merges
 * of earlier branches of the same shape; noise layers; rescaling), each applied to a random
 * earlier tensor (nearest or bilinear UpSampling2D too), then a pooling or flatten head and a dense classifier (sometimes softmax-ended).
 * With `training`, only layers tfjs-layers can itself differentiate in training mode, the
 * reference: no noise layers, dilation, ThresholdedReLU, UpSampling2D or batch norm without
 * centre or scale.
 */
export function randomModel(seed: number, training = false): { model: tf.LayersModel; shape: [number, number, number] } {
  const rng = new Rng(seed);
  const int = (n: number) => Math.floor(rng.next() * n);
  const pick = <T>(v: readonly T[]): T => v[int(v.length)]!;
  const shape: [number, number, number] = [6 + int(8), 6 + int(10), 1 + int(4)];
  const input = tf.input({ shape });
  const pool: S[] = [input];
  const ap = (l: tf.layers.Layer, x: S | S[]) => l.apply(x) as S;
  const steps = 3 + int(6);
  for (let s = 0; s < steps; s++) {
    const x = pick(pool);
    const [h, w] = x.shape.slice(1) as number[];
    const k = 1 + int(Math.min(4, h!, w!));
    const strides = h! >= 4 && w! >= 4 && rng.next() < 0.3 ? 2 : 1;
    const padding = rng.next() < 0.5 ? 'same' : 'valid';
    const activation = pick(ACTS) as 'relu';
    let y: S | null = null;
    switch (int(15)) {
      case 0: case 1: case 2: {
        const dilationRate = strides === 1 && k > 1 && 2 * k <= Math.min(h!, w!) && rng.next() < 0.2 && !training ? 2 : 1;
        y = ap(tf.layers.conv2d({ filters: 1 + int(6), kernelSize: k, strides, padding, activation, useBias: rng.next() < 0.7, dilationRate }), x);
        break;
      }
      case 3: y = ap(tf.layers.depthwiseConv2d({ kernelSize: k, strides, padding, depthMultiplier: 1 + int(2), activation, useBias: rng.next() < 0.5 }), x); break;
      case 4: y = ap(tf.layers.separableConv2d({ filters: 1 + int(5), kernelSize: k, strides, padding, depthMultiplier: 1 + int(2), activation }), x); break;
      case 5: y = ap(tf.layers.batchNormalization({ center: rng.next() < 0.8 || training, scale: rng.next() < 0.8 || training, epsilon: pick([1e-3, 1e-5]) }), x); break;
      case 6: y = ap(pick([
        () => tf.layers.reLU({ maxValue: rng.next() < 0.5 ? 6 : undefined }),
        () => tf.layers.leakyReLU({ alpha: 0.1 + rng.next() * 0.3 }),
        () => tf.layers.prelu({ alphaInitializer: tf.initializers.randomUniform({ minval: 0, maxval: 0.5, seed: 3 }) }),
        () => tf.layers.elu({}),
        () => (training ? tf.layers.reLU({}) : tf.layers.thresholdedReLU({ theta: 0.1 })),
        () => tf.layers.activation({ activation }),
        () => tf.layers.softmax({ axis: -1 }),
      ])(), x); break;
      case 7: y = ap(tf.layers.zeroPadding2d({ padding: [[int(3), int(3)], [int(3), int(3)]] }), x); break;
      case 8: if (h! > 3 && w! > 3) y = ap(tf.layers.cropping2D({ cropping: [[int(2), int(2)], [int(2), int(2)]] }), x); break;
      case 9: {
        const p = 2 + int(2);
        if (h! >= p && w! >= p) y = ap((rng.next() < 0.5 ? tf.layers.maxPooling2d : tf.layers.averagePooling2d)({ poolSize: p, strides: 1 + int(2), padding }), x);
        break;
      }
      case 10: case 11: {
        const same = pool.filter((o) => o !== x && o.shape.slice(1).join() === x.shape.slice(1).join());
        const sameHW = pool.filter((o) => o !== x && o.shape[1] === h && o.shape[2] === w);
        if (same.length) y = ap(pick([tf.layers.add, tf.layers.multiply, tf.layers.maximum, tf.layers.minimum, tf.layers.average])({}), [x, pick(same)]);
        else if (sameHW.length) y = ap(tf.layers.concatenate({}), [x, pick(sameHW)]);
        break;
      }
      case 13: if (!training) y = ap(tf.layers.upSampling2d({ size: [1 + int(2), 2], interpolation: pick(['nearest', 'bilinear'] as const) }), x); break;
      case 12: if (!training) y = ap(pick([() => tf.layers.dropout({ rate: 0.3 }), () => tf.layers.gaussianNoise({ stddev: 0.1 }), () => tf.layers.gaussianDropout({ rate: 0.2 })])(), x); break;
      default: y = ap(tf.layers.rescaling({ scale: 0.5 + rng.next(), offset: rng.next() - 0.5 }), x);
    }
    if (y && y.shape.slice(1).every((d) => (d as number) > 0)) pool.push(y);
  }
  let h = pool[pool.length - 1]!;
  const head = int(4);
  if (head === 0) h = ap(tf.layers.globalAveragePooling2d({}), h);
  else if (head === 1) h = ap(tf.layers.globalMaxPooling2d({}), h);
  else {
    h = ap(tf.layers.flatten({}), h);
    if (head === 3) h = ap(tf.layers.batchNormalization({}), ap(tf.layers.dense({ units: 8, activation: pick(ACTS) as 'relu' }), h));
  }
  h = ap(tf.layers.dense({ units: 3 + int(4), activation: rng.next() < 0.3 ? 'softmax' : 'linear' }), h);
  return { model: tf.model({ inputs: input, outputs: h }), shape };
}


/**
 * A random converter-style GraphModel: 3-9 nodes drawn from the ops the converter emits for
 * image classifiers (_FusedConv2D with BiasAdd and an activation, SAME, VALID or EXPLICIT
 * padding; Conv2D + BiasAdd + an activation op; FusedDepthwiseConv2dNative and
 * DepthwiseConv2dNative with multiplier 1 or 2; FusedBatchNormV3; AddV2, Sub, Mul, Maximum
 * between branches or with a per-channel constant; MaxPool/AvgPool; Pad; ConcatV2; standalone
 * activations), in a chain whose merges read earlier tensors, then Mean over H and W, _FusedMatMul and, half
 * the time, Softmax.
 */
export async function randomGraphModel(seed: number, form: 'plain' | 'tf2' = 'plain'): Promise<{ model: tf.GraphModel; shape: [number, number, number]; softmax: boolean }> {
  const rng = new Rng(seed);
  const int = (n: number) => Math.floor(rng.next() * n);
  const pick = <T>(v: readonly T[]): T => v[int(v.length)]!;
  const shape: [number, number, number] = [5 + int(6), 5 + int(6), 1 + int(4)];
  const consts: ConstSpec[] = [];
  const nodes: object[] = [];
  const tensors: Array<{ name: string; shape: [number, number, number] }> = [{ name: 'x', shape }];
  let id = 0;
  const constant = (shp: number[], lo = -0.5, hi = 0.5): string => {
    const name = `c${id++}`;
    consts.push({ name, shape: shp, values: uniform(shp.reduce((p, d) => p * d, 1), seed * 100 + id, lo, hi) });
    return name;
  };
  const out = (h: number, k: number, s: number, pad: string, extra = 0) => (pad === 'SAME' ? Math.ceil(h / s) : Math.floor((h + extra - k) / s) + 1);
  const steps = 3 + int(7);
  for (let step = 0; step < steps; step++) {
    // A chain with skip connections: each node reads the last tensor (so none is left dangling,
    // which would make it another output of the graph), merges read an earlier one too.
    const x = tensors[tensors.length - 1]!;
    const [h, w, c] = x.shape;
    const name = `n${id++}`;
    const k = 1 + int(Math.min(3, h, w));
    const s = h >= 4 && w >= 4 && rng.next() < 0.3 ? 2 : 1;
    const act = pick(['Relu', 'Relu6', 'LeakyRelu', 'Elu', 'Sigmoid', null] as const);
    const fused = ['BiasAdd', ...(act ? [act] : [])];
    let y: [number, number, number] | null = null;
    switch (int(10)) {
      case 0: case 1: {
        const co = 1 + int(6);
        const padding = pick(['SAME', 'VALID', 'EXPLICIT'] as const);
        const e = [int(2), int(2), int(2), int(2)];
        nodes.push(conv(name, '_FusedConv2D', [x.name, constant([k, k, c, co]), constant([co])], {
          strides: s, padding, fused, ...(padding === 'EXPLICIT' ? { explicit: [0, 0, e[0]!, e[1]!, e[2]!, e[3]!, 0, 0] } : {}), ...(act === 'LeakyRelu' ? { leakyAlpha: 0.2 } : {}),
        }));
        const explicit = padding === 'EXPLICIT';
        y = [out(h, k, s, explicit ? 'VALID' : padding, explicit ? e[0]! + e[1]! : 0), out(w, k, s, explicit ? 'VALID' : padding, explicit ? e[2]! + e[3]! : 0), co];
        break;
      }
      case 2: {
        const co = 1 + int(6);
        const padding = pick(['SAME', 'VALID'] as const);
        nodes.push(conv(`${name}/conv`, 'Conv2D', [x.name, constant([k, k, c, co])], { strides: s, padding }));
        nodes.push({ name: act ? `${name}/bias` : name, op: 'BiasAdd', input: [`${name}/conv`, constant([co])], attr: { data_format: { s: b64('NHWC') } } });
        if (act) nodes.push({ name, op: act === 'LeakyRelu' ? 'Relu' : act, input: [`${name}/bias`] });
        y = [out(h, k, s, padding), out(w, k, s, padding), co];
        break;
      }
      case 3: {
        const m = 1 + int(2);
        const padding = pick(['SAME', 'VALID'] as const);
        const plain = m > 1 || rng.next() < 0.3;
        const dwAct = act === 'LeakyRelu' || act === 'Elu' || act === 'Sigmoid' ? 'Relu' : act;
        nodes.push(conv(name, plain ? 'DepthwiseConv2dNative' : 'FusedDepthwiseConv2dNative',
          plain ? [x.name, constant([k, k, c, m])] : [x.name, constant([k, k, c, 1]), constant([c])], { strides: s, padding, ...(plain ? {} : { fused: ['BiasAdd', ...(dwAct ? [dwAct] : [])] }) }));
        y = [out(h, k, s, padding), out(w, k, s, padding), c * (plain ? m : 1)];
        break;
      }
      case 4:
        nodes.push({ name, op: 'FusedBatchNormV3', input: [x.name, constant([c], 0.5, 1.5), constant([c]), constant([c], -0.2, 0.2), constant([c], 0.5, 1.5)],
          attr: { epsilon: { f: 0.001 }, data_format: { s: b64('NHWC') }, is_training: { b: false } } });
        y = x.shape;
        break;
      case 5: {
        const op = pick(['AddV2', 'Sub', 'Mul', 'Maximum'] as const);
        const other = tensors.filter((t) => t !== x && t.shape.join() === x.shape.join());
        nodes.push({ name, op, input: other.length && rng.next() < 0.7 ? [x.name, pick(other).name] : [x.name, constant([c])] });
        y = x.shape;
        break;
      }
      case 6: {
        const p = Math.min(2 + int(2), h, w);
        const padding = pick(['SAME', 'VALID'] as const);
        nodes.push({ name, op: pick(['MaxPool', 'AvgPool'] as const), input: [x.name], attr: { ksize: { list: { i: ['1', String(p), String(p), '1'] } }, strides: { list: { i: ['1', String(s), String(s), '1'] } }, padding: { s: b64(padding) }, data_format: { s: b64('NHWC') } } });
        y = [out(h, p, s, padding), out(w, p, s, padding), c];
        break;
      }
      case 7: {
        const p = [int(3), int(3), int(3), int(3)];
        const pads = `c${id++}`;
        consts.push({ name: pads, shape: [4, 2], values: new Int32Array([0, 0, p[0]!, p[1]!, p[2]!, p[3]!, 0, 0]), dtype: 'int32' });
        nodes.push({ name, op: 'Pad', input: [x.name, pads] });
        y = [h + p[0]! + p[1]!, w + p[2]! + p[3]!, c];
        break;
      }
      case 8: {
        const other = tensors.filter((t) => t.shape[0] === h && t.shape[1] === w);
        const o = pick(other);
        const axis = `c${id++}`;
        consts.push({ name: axis, shape: [], values: new Int32Array([3]), dtype: 'int32' });
        nodes.push({ name, op: 'ConcatV2', input: [x.name, o.name, axis], attr: { N: { i: '2' } } });
        y = [h, w, c + o.shape[2]];
        break;
      }
      default:
        nodes.push({ name, op: pick(['Relu', 'Relu6', 'Sigmoid', 'Tanh', 'Elu'] as const), input: [x.name] });
        y = x.shape;
    }
    if (y.every((d) => d > 0)) tensors.push({ name, shape: y });
    else nodes.pop();
  }
  const last = tensors[tensors.length - 1]!;
  const axes = `c${id++}`;
  consts.push({ name: axes, shape: [2], values: new Int32Array([1, 2]), dtype: 'int32' });
  nodes.push({ name: 'gap', op: 'Mean', input: [last.name, axes], attr: { keep_dims: { b: false } } });
  const units = 3 + int(4);
  nodes.push({ name: 'fc', op: '_FusedMatMul', input: ['gap', constant([last.shape[2], units]), constant([units])], attr: { transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: strs(['BiasAdd']), num_args: { i: '1' } } });
  const softmax = rng.next() < 0.5;
  if (softmax) nodes.push({ name: 'probs', op: 'Softmax', input: ['fc'] });
  nodes.push({ name: 'Identity', op: 'Identity', input: [softmax ? 'probs' : 'fc'] });
  // The TF2 form: StatefulPartitionedCall/... names, an Identity output and a signature whose
  // keys are not node names (the input keyed 'input_1' is placeholder 'serving_default_input_1').
  const tf2 = form === 'tf2' ? { inputKey: 'input_1', placeholder: seed % 2 ? 'serving_default_input_1' : 'input_1', outputs: [{ key: `dense_${seed}`, node: softmax ? 'probs' : 'fc', units }] } : undefined;
  return { model: await graphModel(nodes, consts, { name: 'x', shape: [-1, ...shape] }, tf2), shape, softmax };
}
