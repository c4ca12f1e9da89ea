/**
 * LayersModel → compiler graph (ir.ts). Sequential and functional models (multi-branch DAGs) are
 * walked from the output back through each layer's inbound node. Layers whose semantics are
 * written out here become ops; any other layer (or layer option) becomes a fallback node that
 * runs the layer's own `apply` for that node only.
 */
import * as tf from '@tensorflow/tfjs';
import { describeHeads, layersHeads } from './heads.js';
import type { ActivationFn, BatchNormParams, Graph, Node, Op, Param } from './ir.js';
import { ACTIVATIONS } from './ir.js';

type Layer = tf.layers.Layer & Record<string, unknown>;
interface LayerVar { read(): tf.Tensor }
interface InboundNode { inboundLayers: tf.layers.Layer[]; nodeIndices: number[]; tensorIndices: number[]; inputTensors: tf.SymbolicTensor[]; outputTensors: tf.SymbolicTensor[] }

function pair(v: unknown, fallback = 1): [number, number] {
  if (v == null) return [fallback, fallback];
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0]!, a[1] ?? a[0]!];
}

function param(v: unknown): Param | undefined {
  return v ? { read: () => (v as LayerVar).read() } : undefined;
}

/** tfjs-layers activation names (getConfig spelling) → the compiler's. */
const ACTIVATION_NAMES: Record<string, ActivationFn> = {
  hardSigmoid: 'hard_sigmoid', hard_sigmoid: 'hard_sigmoid', hardSwish: 'hard_swish', hard_swish: 'hard_swish', silu: 'swish', leakyrelu: 'leaky_relu',
};
function activationFn(name: unknown): ActivationFn | null {
  if (typeof name !== 'string') return name == null ? 'linear' : null;
  const n = ACTIVATION_NAMES[name] ?? name;
  return (ACTIVATIONS as readonly string[]).includes(n) ? (n as ActivationFn) : null;
}

function channelsLast(config: tf.serialization.ConfigDict): boolean {
  return config.dataFormat === undefined || config.dataFormat === null || config.dataFormat === 'channelsLast';
}

function padding(v: unknown): [[number, number], [number, number]] {
  if (typeof v === 'number') return [[v, v], [v, v]];
  const a = v as Array<number | number[]>;
  const side = (x: number | number[] | undefined): [number, number] => (typeof x === 'number' ? [x, x] : [x![0]!, x![1] ?? x![0]!]);
  return [side(a[0]), side(a[1])];
}

/**
 * The ops one layer lowers to (a chain: each op takes the previous one's output; the first
 * takes the layer's inputs), or a reason it does not lower.
 */
function lowerLayer(layer: Layer, name: string, inputRanks: number[], notes: string[]): Op[] | string {
  const kind = layer.getClassName();
  const config = layer.getConfig();
  const rank = inputRanks[0];
  if (!channelsLast(config)) return `dataFormat ${String(config.dataFormat)} (channelsLast only)`;
  const act = (after: Op[]): Op[] | string => {
    const fn = activationFn(config.activation);
    if (!fn) return `activation ${String(config.activation)}`;
    const last = after[after.length - 1]!;
    if ((fn === 'relu' || fn === 'relu6') && (last.kind === 'conv' || last.kind === 'dense')) last.act = fn;
    else if (fn !== 'linear') after.push({ kind: 'act', fn });
    return after;
  };
  switch (kind) {
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      const pad = config.padding;
      if (pad !== 'same' && pad !== 'valid') return `padding ${String(pad)}`;
      if (rank !== 4) return `input rank ${rank}`;
      const depthwise = kind === 'DepthwiseConv2D';
      const filter = param(depthwise ? layer.depthwiseKernel : layer.kernel);
      if (!filter) return 'no kernel (layer not built)';
      let dilations = pair(config.dilationRate);
      if (depthwise && (dilations[0] !== 1 || dilations[1] !== 1)) {
        // tfjs-layers' DepthwiseConv2D runs undilated whatever its dilationRate (its call and
        // output shape ignore it); the compiled layer computes what predict computes.
        notes.push(`DepthwiseConv2D '${name}' has dilationRate ${JSON.stringify(config.dilationRate)}, which tfjs-layers ignores (it runs undilated, unlike Keras); compiled as tfjs runs it`);
        dilations = [1, 1];
      }
      return act([{ kind: 'conv', depthwise, filter, bias: config.useBias ? param(layer.bias) : undefined, strides: pair(config.strides), pad, dilations, act: 'linear' }]);
    }
    case 'SeparableConv2D': {
      const pad = config.padding;
      if (pad !== 'same' && pad !== 'valid') return `padding ${String(pad)}`;
      if (rank !== 4) return `input rank ${rank}`;
      const dw = param(layer.depthwiseKernel);
      const pw = param(layer.pointwiseKernel);
      if (!dw || !pw) return 'no kernel (layer not built)';
      return act([
        { kind: 'conv', depthwise: true, filter: dw, strides: pair(config.strides), pad, dilations: pair(config.dilationRate), act: 'linear' },
        { kind: 'conv', depthwise: false, filter: pw, bias: config.useBias ? param(layer.bias) : undefined, strides: [1, 1], pad: 'valid', dilations: [1, 1], act: 'linear' },
      ]);
    }
    case 'Dense': {
      if (rank === undefined || rank < 2) return `input rank ${rank}`;
      const kernel = param(layer.kernel);
      if (!kernel) return 'no kernel (layer not built)';
      return act([{ kind: 'dense', kernel, bias: config.useBias ? param(layer.bias) : undefined, act: 'linear' }]);
    }
    case 'BatchNormalization': {
      const axis = config.axis as number;
      if (!(axis === -1 || axis === (rank ?? 0) - 1)) return `axis ${axis} (the last axis compiles)`;
      const bn: BatchNormParams = {
        gamma: config.scale ? param(layer.gamma) : undefined, beta: config.center ? param(layer.beta) : undefined,
        mean: param(layer.movingMean)!, variance: param(layer.movingVariance)!, epsilon: config.epsilon as number,
        training: {
          momentum: config.momentum as number,
          update: (mean, variance) => {
            for (const [v, value] of [[layer.movingMean, mean], [layer.movingVariance, variance]] as const) {
              const variable = v as { read(): tf.Tensor; write(t: tf.Tensor): void };
              tf.tidy(() => {
                const old = variable.read();
                variable.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - (config.momentum as number))));
              });
            }
          },
        },
      };
      return [{ kind: 'batchnorm', bn }];
    }
    case 'Activation': {
      const fn = activationFn(config.activation);
      return fn ? [{ kind: 'act', fn }] : `activation ${String(config.activation)}`;
    }
    case 'ReLU': {
      const max = config.maxValue;
      if (max == null) return [{ kind: 'act', fn: 'relu' }];
      return max === 6 ? [{ kind: 'act', fn: 'relu6' }] : `maxValue ${String(max)} (none or 6 compile)`;
    }
    case 'LeakyReLU': return [{ kind: 'act', fn: 'leaky_relu', alpha: config.alpha as number }];
    case 'ThresholdedReLU': return [{ kind: 'act', fn: 'thresholded_relu', alpha: (config.theta as number | undefined) ?? 1 }];
    case 'PReLU': {
      const slopes = param(layer.alpha);
      return slopes ? [{ kind: 'act', fn: 'prelu', slopes }] : 'no slopes (layer not built)';
    }
    case 'ELU': return config.alpha == null || config.alpha === 1 ? [{ kind: 'act', fn: 'elu' }] : `alpha ${String(config.alpha)}`;
    case 'Softmax': {
      const axis = config.axis;
      return axis === -1 || axis === (rank ?? 0) - 1 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === (rank ?? 0) - 1))
        ? [{ kind: 'act', fn: 'softmax' }] : `axis ${String(axis)}`;
    }
    case 'Add': return [{ kind: 'binary', fn: 'add' }];
    case 'Subtract': return [{ kind: 'binary', fn: 'sub' }];
    case 'Multiply': return [{ kind: 'binary', fn: 'mul' }];
    case 'Maximum': return [{ kind: 'binary', fn: 'max' }];
    case 'Minimum': return [{ kind: 'binary', fn: 'min' }];
    case 'Average': return [{ kind: 'binary', fn: 'add' }, { kind: 'affine', scale: 1 / inputRanks.length, offset: 0 }];
    case 'Concatenate': {
      const axis = config.axis as number;
      return [{ kind: 'concat', axis: axis < 0 ? (rank ?? 0) + axis : axis }];
    }
    case 'ZeroPadding2D': return rank === 4 ? [{ kind: 'pad', pads: padding(config.padding) }] : `input rank ${rank}`;
    case 'Cropping2D': return rank === 4 ? [{ kind: 'crop', crop: padding(config.cropping) }] : `input rank ${rank}`;
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const pad = config.padding;
      if (pad !== 'same' && pad !== 'valid') return `padding ${String(pad)}`;
      const filterSize = pair(config.poolSize);
      return [{ kind: 'pool', type: kind === 'MaxPooling2D' ? 'max' : 'avg', filterSize, strides: pair(config.strides ?? config.poolSize), pad }];
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      return [{ kind: 'reduce', type: kind === 'GlobalAveragePooling2D' ? 'mean' : 'max', axes: [1, 2], keepDims: config.keepDims === true }];
    case 'Flatten': return [{ kind: 'reshape', shape: [-1] }];
    case 'Reshape': return [{ kind: 'reshape', shape: [...(config.targetShape as number[])] }];
    case 'Rescaling': {
      const { scale, offset } = config as { scale: unknown; offset: unknown };
      return typeof scale === 'number' && typeof offset === 'number' ? [{ kind: 'affine', scale, offset }] : 'per-channel scale';
    }
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'SpatialDropout2D':
    case 'GaussianDropout':
    case 'GaussianNoise':
    case 'AlphaDropout':
      return [{ kind: 'dropout', train: (x) => layer.apply(x, { training: true }) as tf.Tensor }];
    default:
      return `layer ${kind} is not compiled`;
  }
}

/** A model used as a layer (a Keras backbone inside a functional or Sequential model). */
function asContainer(layer: tf.layers.Layer): tf.LayersModel | null {
  return layer instanceof tf.LayersModel ? layer : null;
}

/**
 * Lowers `model` to the compiler's graph, or throws (an Error whose message says why) when the
 * model's structure itself is outside what compiles (several inputs, layers with several
 * outputs). `head` is the output to lower (an index of `model.outputs`; required when it has
 * several): only the layers it depends on are visited.
 *
 * A model used as a layer (a backbone called inside a functional model, or after the first
 * layer of a Sequential one) is inlined: its layers become nodes named `outer/inner`, once per
 * call, so a backbone called twice is lowered twice and shares its weights.
 */
export function lowerLayersModel(model: tf.LayersModel, head?: number): Graph {
  if (model.inputs.length !== 1) throw new Error(`the model has ${model.inputs.length} inputs (one image input compiles)`);
  if (head === undefined && model.outputs.length !== 1) throw new Error(`the model has ${model.outputs.length} outputs (${describeHeads(layersHeads(model))}); choose the one to attack with head (--head NAME)`);
  const outputTensor = model.outputs[head ?? 0];
  if (!outputTensor) throw new Error(`the model has no output ${head}`);
  const nodes: Node[] = [];
  const notes: string[] = [];
  /**
   * One scope per model call: symbolic tensor id → node index. A nested model's input tensor
   * is mapped, before its layers are visited, to the node that feeds the call.
   */
  type Scope = { index: Map<number, number>; prefix: string };
  const input = model.inputs[0]!;
  const visit = (t: tf.SymbolicTensor, scope: Scope): number => {
    const known = scope.index.get(t.id);
    if (known !== undefined) return known;
    if (scope.prefix === '' && t.id === input.id) {
      nodes.push({ name: t.sourceLayer.name, source: 'InputLayer', op: { kind: 'input' }, inputs: [] });
      scope.index.set(t.id, nodes.length - 1);
      return nodes.length - 1;
    }
    const layer = t.sourceLayer as Layer;
    const name = scope.prefix + layer.name;
    const inbound = (layer.inboundNodes as unknown as InboundNode[])[t.nodeIndex];
    if (!inbound) throw new Error(`layer '${name}' has no inbound node ${t.nodeIndex}`);
    if (inbound.outputTensors.length !== 1) throw new Error(`layer '${name}' has ${inbound.outputTensors.length} outputs`);
    const ins = inbound.inputTensors.map((s) => visit(s, scope));
    const inner = asContainer(layer);
    if (inner && inner.inputs.length === 1 && inner.outputs.length === 1 && ins.length === 1) {
      const nested: Scope = { index: new Map([[inner.inputs[0]!.id, ins[0]!]]), prefix: `${name}/` };
      const out = visit(inner.outputs[0]!, nested);
      scope.index.set(t.id, out);
      return out;
    }
    const ranks = inbound.inputTensors.map((s) => s.shape.length);
    const lowered = inner ? `a nested model with ${inner.inputs.length} inputs and ${inner.outputs.length} outputs` : lowerLayer(layer, name, ranks, notes);
    if (typeof lowered === 'string') {
      nodes.push({
        name, source: layer.getClassName(), inputs: ins,
        op: { kind: 'fallback', reason: lowered, run: (xs, training) => layer.apply(xs.length === 1 ? xs[0]! : xs, { training }) as tf.Tensor },
      });
    } else {
      let prev = ins;
      for (const op of lowered) {
        nodes.push({ name, source: layer.getClassName(), op, inputs: prev });
        prev = [nodes.length - 1];
      }
    }
    scope.index.set(t.id, nodes.length - 1);
    return nodes.length - 1;
  };
  const output = visit(outputTensor, { index: new Map(), prefix: '' });
  return { nodes, output, outputKind: 'logits', merged: [], notes, owned: [] };
}
