/**
 * GraphModel → compiler graph (ir.ts), from the converter's GraphDef JSON (model.json's
 * `modelTopology.node`: `op`, `input`, protobuf-JSON `attr`) and the model's constants.
 * The converter's image-classifier op set lowers to ops (`_FusedConv2D`,
 * `FusedDepthwiseConv2dNative`, `_FusedMatMul`, `FusedBatchNorm*`, `AddV2`, `Relu6`, `Mean`, ...);
 * any other op becomes a fallback node that the GraphModel's own executor runs for that node
 * only (fed its inputs by name).
 */
import * as tf from '@tensorflow/tfjs';
import { ModelError } from '../../util/errors.js';
import { chooseHead, graphEndpoints, graphHeads } from './heads.js';
import type { Activation, ActivationFn, Graph, Node, Op, Padding, Param } from './ir.js';

interface AttrValue {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  list?: { s?: string[]; i?: Array<string | number>; f?: number[] };
}
interface GraphNode { name: string; op: string; input?: string[]; attr?: Record<string, AttrValue> }

const text = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
const attrS = (n: GraphNode, k: string): string | undefined => (n.attr?.[k]?.s !== undefined ? text(n.attr[k]!.s!) : undefined);
const attrF = (n: GraphNode, k: string): number | undefined => n.attr?.[k]?.f;
const attrB = (n: GraphNode, k: string): boolean => n.attr?.[k]?.b === true;
const listI = (n: GraphNode, k: string): number[] | undefined => n.attr?.[k]?.list?.i?.map(Number);
const listS = (n: GraphNode, k: string): string[] => (n.attr?.[k]?.list?.s ?? []).map(text);

/** 'name:0' → ['name', 0]; '^name' (a control input) → null. */
function parseInput(s: string): [string, number] | null {
  if (s.startsWith('^')) return null;
  const m = /^(.*?)(?::(\d+))?$/.exec(s)!;
  return [m[1]!, m[2] ? Number(m[2]) : 0];
}

const UNARY: Record<string, ActivationFn> = {
  Relu: 'relu', Relu6: 'relu6', Sigmoid: 'sigmoid', Tanh: 'tanh', Softmax: 'softmax', Elu: 'elu', Selu: 'selu',
  Softplus: 'softplus', Softsign: 'softsign', LeakyRelu: 'leaky_relu', Exp: 'exp',
};
const BINARY: Record<string, 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min'> = {
  Add: 'add', AddV2: 'add', BiasAdd: 'add', Sub: 'sub', Mul: 'mul', RealDiv: 'div', Div: 'div', Maximum: 'max', Minimum: 'min',
};
const FUSABLE: Record<string, Activation> = { Relu: 'relu', Relu6: 'relu6' };
const IDENTITIES = new Set(['Identity', 'Snapshot', 'StopGradient', 'PreventGradient']);

function convPadding(n: GraphNode): { pad: Padding } | { reason: string } {
  const p = attrS(n, 'padding');
  if (p === 'SAME') return { pad: 'same' };
  if (p === 'VALID') return { pad: 'valid' };
  if (p === 'EXPLICIT') {
    const e = listI(n, 'explicit_paddings') ?? [];
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) return { reason: `explicit_paddings ${JSON.stringify(e)}` };
    return { pad: [[e[2]!, e[3]!], [e[4]!, e[5]!]] };
  }
  return { reason: `padding ${String(p)}` };
}

function hw(list: number[] | undefined): [number, number] | null {
  if (!list) return [1, 1];
  if (list.length !== 4 || list[0] !== 1 || list[3] !== 1) return null;
  return [list[1]!, list[2]!];
}

/**
 * Lowers a GraphModel to the compiler's graph, from its one image input to the output `head`
 * (a tensor `node:slot` of graphHeads; default: the only output). Inputs and outputs are
 * resolved through the model's signature (heads.ts), so TF2 conversions, whose signature keys
 * are not node names, compile; only the chosen head's nodes are visited.
 */
export function lowerGraphModel(model: tf.GraphModel, head?: string): Graph {
  const artifacts = (model as unknown as { artifacts?: tf.io.ModelArtifacts }).artifacts;
  const topology = artifacts?.modelTopology as { node?: GraphNode[] } | undefined;
  if (!topology?.node) throw new ModelError('Error in the GraphModel: it has no graph definition (modelTopology.node) to compile.');
  const weights = model.weights as Record<string, tf.Tensor[]>;
  const defs = new Map(topology.node.map((n) => [n.name, n]));
  const endpoints = graphEndpoints(model);
  const inputNames = endpoints.inputs.map((e) => e.node);
  if (inputNames.length !== 1) throw new ModelError(`Error in the GraphModel: it has ${inputNames.length} inputs (${endpoints.inputs.map((e) => e.key).join(', ')}); advkit attacks models with one image input.`);
  const outputRef = head ?? String(chooseHead('the GraphModel', graphHeads(model), undefined).ref);

  const nodes: Node[] = [];
  const owned: tf.Tensor[] = [];
  const index = new Map<string, number>();
  const constant = (name: string): Param | null => {
    let def = defs.get(name);
    while (def && IDENTITIES.has(def.op) && def.input?.[0]) def = defs.get(parseInput(def.input[0])![0]);
    if (!def || def.op !== 'Const') return null;
    const t = weights[def.name]?.[0];
    return t ? { read: () => t } : null;
  };

  /**
   * The `fused_ops` of _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul: bias, fused
   * activation, activation after (LeakyRelu with its `leakyrelu_alpha`, Prelu with its slopes,
   * the extra argument after the bias).
   */
  type After = Extract<Op, { kind: 'act' }>;
  const fusedOps = (def: GraphNode, refs: string[]): { bias?: Param; act: Activation; after: After | null } | { reason: string } => {
    let bias: Param | undefined;
    let act: Activation = 'linear';
    let after: After | null = null;
    const ops = listS(def, 'fused_ops');
    for (const f of ops) {
      if (f === 'BiasAdd' || f === 'Add') {
        const b = refs[2] ? constant(parseInput(refs[2])![0]) : null;
        if (!b) return { reason: 'the bias is not a constant' };
        bias = b;
      } else if (FUSABLE[f]) act = FUSABLE[f];
      else if (f === 'LeakyRelu') after = { kind: 'act', fn: 'leaky_relu', alpha: attrF(def, 'leakyrelu_alpha') ?? 0.2 };
      else if (f === 'Prelu') {
        const ref = refs[ops.includes('BiasAdd') || ops.includes('Add') ? 3 : 2];
        const slopes = ref ? constant(parseInput(ref)![0]) : null;
        if (!slopes) return { reason: 'the PReLU slopes are not a constant' };
        after = { kind: 'act', fn: 'prelu', slopes };
      } else if (UNARY[f]) after = { kind: 'act', fn: UNARY[f] };
      else return { reason: `fused op ${f}` };
    }
    return { bias, act, after };
  };

  /** The value of a one-element constant (an axis, a padding value), or null. */
  const scalar = (ref: string): number | null => {
    const c = constant(parseInput(ref)![0])?.read();
    return c && c.size === 1 ? c.dataSync()[0]! : null;
  };
  /**
   * The rest of a shape built as Pack([Shape(t)[0], c1, c2, ...]) (Keras' Flatten and Reshape as
   * TF2 exports them with an unknown batch: the batch read at run time, the rest constants), or
   * null when `ref` is not that.
   */
  const batchPackedShape = (ref: string): number[] | null => {
    const pack = defs.get(parseInput(ref)![0]);
    const ins = (pack?.input ?? []).filter((r) => !r.startsWith('^'));
    if (pack?.op !== 'Pack' || Number(pack.attr?.axis?.i ?? 0) !== 0 || ins.length < 2) return null;
    const slice = defs.get(parseInput(ins[0]!)![0]);
    const sliceIns = (slice?.input ?? []).filter((r) => !r.startsWith('^'));
    if (slice?.op !== 'StridedSlice' || sliceIns.length !== 4 || Number(slice.attr?.shrink_axis_mask?.i ?? 0) !== 1) return null;
    if (defs.get(parseInput(sliceIns[0]!)![0])?.op !== 'Shape') return null;
    if (scalar(sliceIns[1]!) !== 0 || scalar(sliceIns[2]!) !== 1 || scalar(sliceIns[3]!) !== 1) return null;
    const rest = ins.slice(1).map(scalar);
    return rest.every((v) => v !== null) && rest.filter((v) => v === -1).length <= 1 ? (rest as number[]) : null;
  };

  const visiting = new Set<string>();
  const visit = (ref: string): number => {
    const [name, slot] = parseInput(ref)!;
    const key = `${name}:${slot}`;
    const known = index.get(key);
    if (known !== undefined) return known;
    const def = defs.get(name);
    if (!def) throw new ModelError(`Error in the GraphModel: the graph has no node '${name}' (read as an input of another node); the model.json is corrupt.`);
    if (visiting.has(key)) throw new ModelError(`Error in the GraphModel: node '${name}' reads its own output through a cycle; a model graph must be acyclic.`);
    visiting.add(key);
    const refs = (def.input ?? []).filter((s) => !s.startsWith('^'));
    const push = (op: Op, inputs: number[]): number => {
      nodes.push({ name, source: def.op, op, inputs });
      return nodes.length - 1;
    };
    const fallback = (reason: string): number => {
      const live = refs.filter((r) => !constant(parseInput(r)![0]));
      const ins = live.map(visit);
      return push({
        kind: 'fallback', reason,
        run: (xs) => {
          const feed: Record<string, tf.Tensor> = {};
          live.forEach((r, i) => { feed[r] = xs[i]!; });
          return model.execute(feed, slot === 0 ? name : `${name}:${slot}`) as tf.Tensor;
        },
      }, ins);
    };
    const result = ((): number => {
      if (slot !== 0) return fallback(`output ${slot} of ${def.op}`);
      if (inputNames.includes(name) || def.op === 'Placeholder') return push({ kind: 'input' }, []);
      if (IDENTITIES.has(def.op) && def.op !== 'StopGradient' && def.op !== 'PreventGradient') return push({ kind: 'identity' }, [visit(refs[0]!)]);
      if (def.op === 'Const') throw new ModelError(`Error in the GraphModel: constant '${name}' is used as an activation; the graph is not an image classifier advkit can compile.`);
      switch (def.op) {
        case 'Conv2D': case '_FusedConv2D': case 'DepthwiseConv2dNative': case 'FusedDepthwiseConv2dNative': {
          const depthwise = def.op.includes('Depthwise');
          const padding = convPadding(def);
          const strides = hw(listI(def, 'strides'));
          const dilations = hw(listI(def, 'dilations'));
          const filter = constant(parseInput(refs[1]!)![0]);
          const format = attrS(def, 'data_format') ?? 'NHWC';
          if ('reason' in padding) return fallback(padding.reason);
          const pad = padding.pad;
          if (!strides || !dilations || format !== 'NHWC') return fallback('strides, dilations or data format');
          if (!filter) return fallback('the filter is not a constant');
          const f = fusedOps(def, refs);
          if ('reason' in f) return fallback(f.reason);
          const { bias, act, after } = f;
          const conv = push({ kind: 'conv', depthwise, filter, bias, strides, pad, dilations, act }, [visit(refs[0]!)]);
          return after ? push(after, [conv]) : conv;
        }
        case 'MatMul': case '_FusedMatMul': {
          if (attrB(def, 'transpose_a')) return fallback('transpose_a');
          const k = constant(parseInput(refs[1]!)![0]);
          if (!k) return fallback('the weights are not a constant');
          const kt = k.read();
          let kernel: Param = k;
          if (attrB(def, 'transpose_b')) {
            const t = tf.keep(tf.transpose(kt));
            owned.push(t);
            kernel = { read: () => t };
          }
          const f = fusedOps(def, refs);
          if ('reason' in f) return fallback(f.reason);
          const { bias, act, after } = f;
          const dense = push({ kind: 'dense', kernel, bias, act }, [visit(refs[0]!)]);
          return after ? push(after, [dense]) : dense;
        }
        case 'FusedBatchNorm': case 'FusedBatchNormV2': case 'FusedBatchNormV3': {
          const [scale, offset, mean, variance] = refs.slice(1, 5).map((r) => constant(parseInput(r)![0]));
          if (!scale || !offset || !mean || !variance || (attrS(def, 'data_format') ?? 'NHWC') !== 'NHWC') return fallback('non-constant statistics or NCHW');
          if (attrB(def, 'is_training')) return fallback('is_training');
          return push({ kind: 'batchnorm', bn: { gamma: scale, beta: offset, mean, variance, epsilon: attrF(def, 'epsilon') ?? 1e-3 } }, [visit(refs[0]!)]);
        }
        case 'MaxPool': case 'AvgPool': {
          const ksize = hw(listI(def, 'ksize'));
          const strides = hw(listI(def, 'strides'));
          const pad = attrS(def, 'padding');
          if (!ksize || !strides || (pad !== 'SAME' && pad !== 'VALID') || (attrS(def, 'data_format') ?? 'NHWC') !== 'NHWC') return fallback('pooling options');
          return push({ kind: 'pool', type: def.op === 'MaxPool' ? 'max' : 'avg', filterSize: ksize, strides, pad: pad === 'SAME' ? 'same' : 'valid' }, [visit(refs[0]!)]);
        }
        case 'Mean': case 'Max': {
          const axes = constant(parseInput(refs[1]!)![0]);
          if (!axes) return fallback('axes are not a constant');
          const a = Array.from(axes.read().dataSync());
          return push({ kind: 'reduce', type: def.op === 'Mean' ? 'mean' : 'max', axes: a, keepDims: attrB(def, 'keep_dims') }, [visit(refs[0]!)]);
        }
        case 'ConcatV2': {
          const axis = scalar(refs[refs.length - 1]!);
          if (axis === null) return fallback('axis is not a constant');
          return push({ kind: 'concat', axis }, refs.slice(0, -1).map(visit));
        }
        case 'Pad': case 'PadV2': {
          const p = constant(parseInput(refs[1]!)![0]);
          const value = refs[2] ? scalar(refs[2]) : 0;
          if (!p || value !== 0) return fallback('non-constant or non-zero padding');
          const v = Array.from(p.read().dataSync());
          if (v.length !== 8 || v[0] || v[1] || v[6] || v[7]) return fallback('padding outside the spatial axes');
          return push({ kind: 'pad', pads: [[v[2]!, v[3]!], [v[4]!, v[5]!]] }, [visit(refs[0]!)]);
        }
        case 'Reshape': {
          const s = constant(parseInput(refs[1]!)![0]);
          if (!s) {
            const rest = batchPackedShape(refs[1]!);
            return rest ? push({ kind: 'reshape', shape: rest }, [visit(refs[0]!)]) : fallback('shape is not a constant');
          }
          const shape = Array.from(s.read().dataSync());
          if (shape.length < 2) return fallback('reshape to rank 1');
          return push({ kind: 'reshape', shape: shape.slice(1) }, [visit(refs[0]!)]);
        }
        case 'Prelu': {
          const slopes = constant(parseInput(refs[1]!)![0]);
          return slopes ? push({ kind: 'act', fn: 'prelu', slopes }, [visit(refs[0]!)]) : fallback('the slopes are not a constant');
        }
        case 'Squeeze': return push({ kind: 'squeeze', axes: listI(def, 'squeeze_dims') ?? [] }, [visit(refs[0]!)]);
        default: {
          const unary = UNARY[def.op];
          if (unary) return push({ kind: 'act', fn: unary, alpha: attrF(def, 'alpha') }, [visit(refs[0]!)]);
          const bin = BINARY[def.op];
          if (bin && refs.length === 2) {
            const c0 = constant(parseInput(refs[0]!)![0]);
            const c1 = constant(parseInput(refs[1]!)![0]);
            if (c0 && c1) return fallback('both operands are constants');
            if (c1) return push({ kind: 'const-binary', fn: bin, value: c1, constFirst: false }, [visit(refs[0]!)]);
            if (c0) return push({ kind: 'const-binary', fn: bin, value: c0, constFirst: true }, [visit(refs[1]!)]);
            return push({ kind: 'binary', fn: bin }, [visit(refs[0]!), visit(refs[1]!)]);
          }
          return fallback(`op ${def.op} is not compiled`);
        }
      }
    })();
    visiting.delete(key);
    index.set(key, result);
    return result;
  };
  const output = visit(outputRef);
  return { nodes, output, outputKind: 'logits', merged: [], notes: [], owned };
}
