/**
 * ONNX → compiler graph (ir.ts): the models PyTorch users ship (`torch.onnx.export`), NCHW,
 * lowered to the NHWC graph every other frontend produces, so the classifier takes images in
 * pixel space like any other and runs on the same fused ops.
 *
 * Weights are laid out once at load (conv filters OIHW → HWIO, depthwise → HWCM, Gemm's B
 * transposed); every tensor's logical NCHW shape is inferred from the input's, so shape
 * subgraphs (PyTorch's `x.view(x.size(0), -1)` as Shape/Gather/Unsqueeze/Concat, chunk sizes)
 * fold to constants and a flatten of a feature map keeps PyTorch's channel-major order. An op
 * outside this set, or an attribute it does not honour, is refused with a ModelError naming the
 * node and the op.
 *
 * Ops: Conv (groups, dilations, pads, auto_pad VALID/SAME_UPPER), BatchNormalization, Gemm,
 * MatMul, Relu, Clip, LeakyRelu, PRelu, Elu, Sigmoid, HardSigmoid, HardSwish, Tanh, Erf,
 * Softplus, Add/Sub/Mul/Div (with constants), Concat, Split, Slice (channels), Transpose (channel
 * shuffle), Reshape, Flatten, Squeeze/Unsqueeze, MaxPool, AveragePool, GlobalAverage/MaxPool,
 * ReduceMean/ReduceMax, Pad (constant), Softmax, LogSoftmax, Identity, Dropout, Constant, and on
 * constants Shape, Gather, Cast, ConstantOfShape, Range-free integer arithmetic.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelError } from '../../util/errors.js';
import type { Graph, Node, Op, Padding, Param } from './ir.js';

// The protobuf messages as onnx-proto decodes them (the fields read here).
interface Long { low: number; high: number; toNumber?: () => number }
type Int = number | Long;
export interface OnnxTensor { name?: string; dims?: Int[]; dataType?: number; rawData?: Uint8Array; floatData?: number[]; int64Data?: Int[]; int32Data?: number[]; doubleData?: number[]; dataLocation?: number; externalData?: Array<{ key?: string; value?: string }> }
interface OnnxAttribute { name: string; type?: number; f?: number; i?: Int; s?: Uint8Array; t?: OnnxTensor; floats?: number[]; ints?: Int[] }
interface OnnxNode { name?: string; opType: string; input: string[]; output: string[]; attribute?: OnnxAttribute[]; domain?: string }
interface OnnxValueInfo { name: string; type?: { tensorType?: { elemType?: number; shape?: { dim?: Array<{ dimValue?: Int; dimParam?: string }> } } } }
export interface OnnxGraph { node: OnnxNode[]; initializer?: OnnxTensor[]; input?: OnnxValueInfo[]; output?: OnnxValueInfo[] }
export interface OnnxModel { graph?: OnnxGraph; opsetImport?: Array<{ domain?: string; version?: Int }> }

const toInt = (v: Int): number => {
  if (typeof v === 'number') return v;
  return (v.high | 0) * 4294967296 + (v.low >>> 0);
};

/** The values of an ONNX tensor (float or integer) as numbers, with its dims. `external` reads external data. */
export function tensorValues(t: OnnxTensor, external?: (location: string, offset: number, length: number) => Uint8Array): { dims: number[]; values: Float32Array | number[]; isInt: boolean } {
  const dims = (t.dims ?? []).map(toInt);
  const count = dims.reduce((a, b) => a * b, 1);
  let raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  if (t.dataLocation === 1) {
    const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    if (!external || !kv.location) throw new ModelError(`Error in the ONNX model: tensor '${t.name}' keeps its data in an external file, which cannot be read here.`);
    raw = external(kv.location, Number(kv.offset ?? 0), kv.length !== undefined ? Number(kv.length) : -1);
  }
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const dt = t.dataType ?? 1;
  const need = (bytes: number) => { if (view && view.byteLength !== count * bytes) throw new ModelError(`Error in the ONNX model: tensor '${t.name}' holds ${view.byteLength} bytes but its dims [${dims.join(', ')}] need ${count * bytes}; the file is corrupt.`); };
  switch (dt) {
    case 1: { // FLOAT
      need(4);
      const v = view ? Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true)) : Float32Array.from(t.floatData ?? []);
      if (v.length !== count) throw new ModelError(`Error in the ONNX model: tensor '${t.name}' has ${v.length} values for dims [${dims.join(', ')}].`);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new ModelError(`Error in the ONNX model: weight '${t.name}' holds ${v[bad]} at flat index ${bad}; a model with non-finite weights gives meaningless results.`);
      return { dims, values: v, isInt: false };
    }
    case 11: { // DOUBLE
      need(8);
      const v = view ? Array.from({ length: count }, (_, i) => view.getFloat64(8 * i, true)) : [...(t.doubleData ?? [])];
      return { dims, values: Float32Array.from(v), isInt: false };
    }
    case 7: { // INT64
      need(8);
      const v = view ? Array.from({ length: count }, (_, i) => Number(view.getBigInt64(8 * i, true))) : (t.int64Data ?? []).map(toInt);
      return { dims, values: v, isInt: true };
    }
    case 6: case 2: case 3: case 4: case 5: case 9: { // INT32, UINT8, INT8, UINT16, INT16, BOOL
      const size = dt === 6 ? 4 : dt === 4 || dt === 5 ? 2 : 1;
      need(size);
      const get = (i: number) => (dt === 6 ? view!.getInt32(4 * i, true) : dt === 4 ? view!.getUint16(2 * i, true) : dt === 5 ? view!.getInt16(2 * i, true) : dt === 3 ? view!.getInt8(i) : view!.getUint8(i));
      return { dims, values: view ? Array.from({ length: count }, (_, i) => get(i)) : [...(t.int32Data ?? [])], isInt: true };
    }
    default:
      throw new ModelError(`Error in the ONNX model: tensor '${t.name}' has data type ${dt} (float16 and others are not read); export the model in float32.`);
  }
}

/** A value during lowering: a constant (weights, folded shapes), or an activation of the graph. */
type Value =
  | { kind: 'const'; dims: number[]; values: Float32Array | number[]; isInt: boolean }
  /** `shape` is logical (ONNX, NCHW for 4-D), batch -1; the IR tensor of a 4-D one is NHWC. */
  | { kind: 'act'; node: number; shape: number[] }
  /** x.view(n, g, c/g, h, w) of a 4-D activation, before its transpose (a channel shuffle). */
  | { kind: 'grouped'; node: number; shape: number[]; groups: number; swapped: boolean };

const BATCH = -1;

export interface OnnxLowering { graph: Graph; inputShape: [number, number, number]; outputs: string[]; head: string; units: number }

/**
 * Lowers an ONNX model to the compiler's graph, from its one image input [N, C, H, W] (H and W
 * from the model or `inputShape`) to the output named `head` (default: the only output).
 */
export function lowerOnnx(model: OnnxModel, o: { head?: string; inputShape?: readonly [number, number, number]; external?: (location: string, offset: number, length: number) => Uint8Array } = {}): OnnxLowering {
  const g = model.graph;
  if (!g || !Array.isArray(g.node)) throw new ModelError('Error in the ONNX model: it has no graph.');
  const opset = Math.max(0, ...(model.opsetImport ?? []).filter((s) => !s.domain || s.domain === 'ai.onnx').map((s) => toInt(s.version ?? 0)));
  if (opset && (opset < 7 || opset > 21)) throw new ModelError(`Error in the ONNX model: opset ${opset} is outside the opsets 7 to 21 advkit reads; export with opset_version between 11 and 21.`);
  const values = new Map<string, Value>();
  for (const t of g.initializer ?? []) values.set(t.name ?? '', { kind: 'const', ...tensorValues(t, o.external) });
  const inputs = (g.input ?? []).filter((i) => !values.has(i.name));
  if (inputs.length !== 1) throw new ModelError(`Error in the ONNX model: it has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); advkit attacks models with one image input.`);
  const input = inputs[0]!;
  const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && toInt(d.dimValue) > 0 ? toInt(d.dimValue) : undefined));
  if (dims.length !== 4) throw new ModelError(`Error in the ONNX model: its input '${input.name}' has rank ${dims.length}, not an image batch [N, C, H, W].`);
  const [c, h, w] = [dims[1] ?? o.inputShape?.[2], dims[2] ?? o.inputShape?.[0], dims[3] ?? o.inputShape?.[1]];
  if (!c || !h || !w) throw new ModelError(`Error in the ONNX model: cannot tell the image shape from its input '${input.name}' (${JSON.stringify(dims)}); pass inputShape [H, W, C].`);
  if (input.type?.tensorType?.elemType !== undefined && input.type.tensorType.elemType !== 1) throw new ModelError(`Error in the ONNX model: its input '${input.name}' is not float32 (element type ${input.type.tensorType.elemType}); attacks perturb float32 images.`);
  const outputs = (g.output ?? []).map((v) => v.name);
  const head = o.head ?? (outputs.length === 1 ? outputs[0] : undefined);
  if (head === undefined) throw new ModelError(`Error in the ONNX model: it has ${outputs.length} outputs (${outputs.join(', ')}); choose the one to attack with head (--head NAME).`);
  if (!outputs.includes(head)) throw new ModelError(`Error in the ONNX model: head ${JSON.stringify(head)} is not an output of the model; its outputs are ${outputs.join(', ')}.`);

  const nodes: Node[] = [];
  const owned: tf.Tensor[] = [];
  const notes: string[] = [];
  const keep = (t: tf.Tensor): Param => { const k = tf.keep(t); owned.push(k); return { read: () => k }; };
  const push = (name: string, source: string, op: Op, ins: number[]): number => { nodes.push({ name, source, op, inputs: ins }); return nodes.length - 1; };
  nodes.push({ name: input.name, source: 'input', op: { kind: 'input' }, inputs: [] });
  values.set(input.name, { kind: 'act', node: 0, shape: [BATCH, c, h, w] });

  const producers = new Map<string, OnnxNode>();
  for (const n of g.node) for (const out of n.output) producers.set(out, n);
  const lowered = new Set<OnnxNode>();
  const onStack = new Set<OnnxNode>();
  const get = (name: string, by: OnnxNode): Value => {
    const known = values.get(name);
    if (known) return known;
    const p = producers.get(name);
    if (!p) throw new ModelError(`Error in the ONNX model: node '${by.name || by.opType}' reads '${name}', which no node makes; the file is corrupt.`);
    lowerNode(p);
    const v = values.get(name);
    if (!v) throw new ModelError(`Error in the ONNX model: node '${p.name || p.opType}' did not make '${name}'.`);
    return v;
  };

  const lowerNode = (n: OnnxNode): void => {
    if (lowered.has(n)) return;
    if (onStack.has(n)) throw new ModelError(`Error in the ONNX model: node '${n.name || n.opType}' reads its own output through a cycle; a model graph must be acyclic.`);
    onStack.add(n);
    const name = n.name || `${n.opType}_${n.output[0]}`;
    const attr = (k: string) => n.attribute?.find((a) => a.name === k);
    const aInt = (k: string, d: number) => { const a = attr(k); return a?.i !== undefined && a.i !== null ? toInt(a.i) : d; };
    const aFloat = (k: string, d: number) => attr(k)?.f ?? d;
    const aInts = (k: string) => attr(k)?.ints?.map(toInt);
    const aStr = (k: string) => { const s = attr(k)?.s; return s ? Buffer.from(s).toString('utf8') : undefined; };
    const refuse = (why: string): never => { throw new ModelError(`Error in the ONNX model: node '${name}' (${n.opType}) ${why}; advkit cannot compile it.`); };
    const ins = n.input.map((i) => (i === '' ? undefined : get(i, n)));
    const set = (v: Value, k = 0) => values.set(n.output[k]!, v);
    const act = (k = 0): Extract<Value, { kind: 'act' }> => { const v = ins[k]; if (v?.kind !== 'act') refuse(`input ${k} is ${v?.kind === 'grouped' ? 'a 5-D view' : 'not an activation'}`); return v as Extract<Value, { kind: 'act' }>; };
    const konst = (k: number): Extract<Value, { kind: 'const' }> | undefined => { const v = ins[k]; return v?.kind === 'const' ? v : undefined; };
    const ints = (k: number): number[] => { const v = konst(k); if (!v) refuse(`input ${k} is not a constant`); return Array.from(v!.values as ArrayLike<number>); };
    const allConst = ins.every((v) => v === undefined || v.kind === 'const');
    // Constant folding (shape arithmetic, PyTorch's view(x.size(0), -1), chunk sizes).
    if (n.opType === 'Constant') {
      const t = attr('value')?.t;
      const vf = attr('value_float')?.f;
      const vi = attr('value_int')?.i;
      const vis = attr('value_ints')?.ints;
      if (t) set({ kind: 'const', ...tensorValues(t, o.external) });
      else if (vf !== undefined) set({ kind: 'const', dims: [], values: Float32Array.of(vf), isInt: false });
      else if (vi !== undefined) set({ kind: 'const', dims: [], values: [toInt(vi)], isInt: true });
      else if (vis) set({ kind: 'const', dims: [vis.length], values: vis.map(toInt), isInt: true });
      else refuse('has no value attribute advkit reads');
    } else if (n.opType === 'Shape') {
      const v = ins[0];
      if (!v || v.kind === 'grouped') refuse('reads a shape advkit does not track');
      const shape = v!.kind === 'const' ? v!.dims : v!.shape;
      set({ kind: 'const', dims: [shape.length], values: [...shape], isInt: true });
    } else if (allConst && ['Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Cast', 'Add', 'Sub', 'Mul', 'Div', 'Floor', 'Ceil', 'ConstantOfShape', 'Slice', 'Identity', 'Reshape'].includes(n.opType)) {
      set(foldConstant(n, ins as Array<Extract<Value, { kind: 'const' }>>, refuse, aInt, aInts));
    } else {
      lowerActivationOp();
    }
    onStack.delete(n);
    lowered.add(n);

    function lowerActivationOp(): void {
      switch (n.opType) {
        case 'Identity': case 'Dropout': set(ins[0]!); break;
        case 'Conv': conv(); break;
        case 'BatchNormalization': {
          const x = act();
          const [scale, bias, mean, variance] = [1, 2, 3, 4].map((k) => konst(k));
          if (!scale || !bias || !mean || !variance) refuse('has statistics that are not constants');
          if (n.output.length > 1 && n.output.slice(1).some((s) => s)) refuse('runs in training mode');
          const p = (v: Extract<Value, { kind: 'const' }>) => keep(tf.tensor1d(v.values as Float32Array));
          set({ kind: 'act', node: push(name, n.opType, { kind: 'batchnorm', bn: { gamma: p(scale!), beta: p(bias!), mean: p(mean!), variance: p(variance!), epsilon: aFloat('epsilon', 1e-5) } }, [x.node]), shape: x.shape });
          break;
        }
        case 'Relu': unary('relu'); break;
        case 'Sigmoid': unary('sigmoid'); break;
        case 'Tanh': unary('tanh'); break;
        case 'Elu': if (aFloat('alpha', 1) !== 1) refuse('has alpha other than 1'); unary('elu'); break;
        case 'Softplus': unary('softplus'); break;
        case 'Softsign': unary('softsign'); break;
        case 'HardSwish': unary('hard_swish'); break;
        case 'LeakyRelu': unary('leaky_relu', aFloat('alpha', 0.01)); break;
        case 'Softmax': case 'LogSoftmax': {
          const x = act();
          const axis = aInt('axis', opset >= 13 ? -1 : 1);
          if (x.shape.length !== 2 || (axis !== 1 && axis !== -1)) refuse(`is over axis ${axis} of a rank-${x.shape.length} tensor (advkit takes it over the classes of [N, classes])`);
          if (n.opType === 'Softmax') unary('softmax');
          else set({ kind: 'act', node: push(name, n.opType, { kind: 'fallback', reason: 'LogSoftmax runs as tf.logSoftmax', run: ([t]) => tf.logSoftmax(t!) }, [x.node]), shape: x.shape });
          break;
        }
        case 'Erf': unary('erf'); break;
        case 'HardSigmoid': {
          const [alpha, beta] = [aFloat('alpha', 0.2), aFloat('beta', 0.5)];
          const x = act();
          set({ kind: 'act', node: push(name, n.opType, { kind: 'act', fn: 'hard_sigmoid', alpha, beta }, [x.node]), shape: x.shape });
          break;
        }
        case 'Clip': {
          const lo = opset >= 11 ? (konst(1) ? Number(konst(1)!.values[0]) : -Infinity) : aFloat('min', -Infinity);
          const hi = opset >= 11 ? (konst(2) ? Number(konst(2)!.values[0]) : Infinity) : aFloat('max', Infinity);
          if ((ins[1] && !konst(1)) || (ins[2] && !konst(2))) refuse('has bounds that are not constants');
          if (lo === 0 && hi === 6) unary('relu6');
          else if (lo === 0 && hi === Infinity) unary('relu');
          else fallback1((t) => tf.clipByValue(t, Math.max(lo, -3.4e38), Math.min(hi, 3.4e38)), `Clip [${lo}, ${hi}] runs as tf.clipByValue`);
          break;
        }
        case 'PRelu': {
          const x = act();
          const s = konst(1);
          if (!s) refuse('has slopes that are not constants');
          const slopes = keep(tf.reshape(tf.tensor(s!.values as Float32Array, s!.dims.length ? s!.dims : [1]), x.shape.length === 4 ? [-1] : [-1]));
          set({ kind: 'act', node: push(name, n.opType, { kind: 'act', fn: 'prelu', slopes }, [x.node]), shape: x.shape });
          break;
        }
        case 'Add': case 'Sub': case 'Mul': case 'Div': binaryOp(); break;
        case 'Gemm': case 'MatMul': dense(); break;
        case 'MaxPool': case 'AveragePool': pool(); break;
        case 'GlobalAveragePool': case 'GlobalMaxPool': {
          const x = act();
          if (x.shape.length !== 4) refuse('is not on a 4-D feature map');
          set({ kind: 'act', node: push(name, n.opType, { kind: 'reduce', type: n.opType === 'GlobalMaxPool' ? 'max' : 'mean', axes: [1, 2], keepDims: true }, [x.node]), shape: [x.shape[0]!, x.shape[1]!, 1, 1] });
          break;
        }
        case 'ReduceMean': case 'ReduceMax': {
          const x = act();
          const axes = (opset >= 18 && n.input[1] ? ints(1) : aInts('axes') ?? []).map((a) => (a < 0 ? a + x.shape.length : a));
          const keepDims = aInt('keepdims', 1) === 1;
          if (x.shape.length !== 4 || axes.sort().join() !== '2,3') refuse(`reduces axes ${JSON.stringify(axes)} (advkit reduces the spatial axes 2, 3 of a feature map)`);
          const shape = keepDims ? [x.shape[0]!, x.shape[1]!, 1, 1] : [x.shape[0]!, x.shape[1]!];
          set({ kind: 'act', node: push(name, n.opType, { kind: 'reduce', type: n.opType === 'ReduceMax' ? 'max' : 'mean', axes: [1, 2], keepDims }, [x.node]), shape });
          break;
        }
        case 'Concat': {
          const xs = ins.map((v, k) => (v?.kind === 'act' ? v : refuse(`input ${k} is not an activation`)));
          const rank = xs[0]!.shape.length;
          const axis = (aInt('axis', 1) + rank) % rank;
          if (axis !== 1) refuse(`concatenates along axis ${axis} (advkit concatenates channels or features, axis 1)`);
          const shape = [...xs[0]!.shape];
          shape[1] = xs.reduce((a, v) => a + v.shape[1]!, 0);
          set({ kind: 'act', node: push(name, n.opType, { kind: 'concat', axis: rank === 4 ? 3 : 1 }, xs.map((v) => v.node)), shape });
          break;
        }
        case 'Split': case 'Slice': channelSlices(); break;
        case 'Flatten': {
          const x = act();
          if (aInt('axis', 1) !== 1) refuse('flattens from an axis other than 1');
          flattenTo(x, x.shape.slice(1).reduce((a, b) => a * b, 1));
          break;
        }
        case 'Reshape': reshape(); break;
        case 'Transpose': {
          const v = ins[0];
          const perm = aInts('perm');
          if (v?.kind !== 'grouped' || perm?.join() !== '0,2,1,3,4') refuse(`transposes ${JSON.stringify(perm)} (advkit reads the channel shuffle of view(n, g, c/g, h, w).transpose(1, 2))`);
          const gv = v as Extract<Value, { kind: 'grouped' }>;
          set({ ...gv, swapped: !gv.swapped });
          break;
        }
        case 'Squeeze': case 'Unsqueeze': {
          const x = act();
          const axes = (opset >= 13 && n.input[1] ? ints(1) : aInts('axes') ?? []).map((a) => (a < 0 ? a + x.shape.length + (n.opType === 'Unsqueeze' ? 1 : 0) : a)).sort();
          if (n.opType === 'Squeeze' && x.shape.length === 4 && axes.join() === '2,3' && x.shape[2] === 1 && x.shape[3] === 1) flattenTo(x, x.shape[1]!);
          else refuse(`${n.opType === 'Squeeze' ? 'squeezes' : 'unsqueezes'} axes ${JSON.stringify(axes)} of [${x.shape.join(', ')}]`);
          break;
        }
        case 'Pad': {
          const x = act();
          const pads = opset >= 11 ? ints(1) : aInts('pads') ?? [];
          const mode = aStr('mode') ?? 'constant';
          const value = opset >= 11 ? (konst(2) ? Number(konst(2)!.values[0]) : 0) : aFloat('value', 0);
          if (x.shape.length !== 4 || pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5] || mode !== 'constant' || value !== 0) refuse('pads other than the spatial axes with zeros');
          const [t, l, b, r] = [pads[2]!, pads[3]!, pads[6]!, pads[7]!];
          if (t === 0 && l === 0 && b === 0 && r === 0) set(x);
          else set({ kind: 'act', node: push(name, n.opType, { kind: 'pad', pads: [[t, b], [l, r]] }, [x.node]), shape: [x.shape[0]!, x.shape[1]!, x.shape[2]! + t + b, x.shape[3]! + l + r] });
          break;
        }
        default:
          refuse(`is an op advkit does not compile (${n.domain ? `${n.domain}.` : ''}${n.opType})`);
      }
    }

    function unary(fn: Extract<Op, { kind: 'act' }>['fn'], alpha?: number): void {
      const x = act();
      set({ kind: 'act', node: push(name, n.opType, { kind: 'act', fn, ...(alpha !== undefined ? { alpha } : {}) }, [x.node]), shape: x.shape });
    }
    function fallback1(f: (t: tf.Tensor) => tf.Tensor, reason: string): void {
      const x = act();
      set({ kind: 'act', node: push(name, n.opType, { kind: 'fallback', reason, run: ([t]) => f(t!) }, [x.node]), shape: x.shape });
    }
    /** A constant in the NHWC layout of the activation it meets (NCHW [C,1,1] or [1,C,1,1] → [C]). */
    function layoutConst(v: Extract<Value, { kind: 'const' }>, rank: number): tf.Tensor {
      const t = tf.tensor(Float32Array.from(v.values as ArrayLike<number>), v.dims.length ? v.dims : []);
      if (rank !== 4 || v.dims.length < 3) return t;
      const d = [...Array(4 - v.dims.length).fill(1), ...v.dims];
      if (d[0] !== 1) refuse('broadcasts a constant over the batch');
      return tf.transpose(tf.reshape(t, d), [0, 2, 3, 1]);
    }
    function broadcastShape(a: number[], b: number[]): number[] {
      const r = Math.max(a.length, b.length);
      const pa = [...Array(r - a.length).fill(1), ...a];
      const pb = [...Array(r - b.length).fill(1), ...b];
      return pa.map((x, i) => (x === 1 ? pb[i]! : x));
    }
    function binaryOp(): void {
      const fn = ({ Add: 'add', Sub: 'sub', Mul: 'mul', Div: 'div' } as const)[n.opType as 'Add']!;
      const [a, b] = ins;
      if (a?.kind === 'act' && b?.kind === 'act') {
        if (a.shape.length !== b.shape.length) refuse('combines activations of different ranks');
        set({ kind: 'act', node: push(name, n.opType, { kind: 'binary', fn }, [a.node, b.node]), shape: broadcastShape(a.shape, b.shape) });
      } else if (a?.kind === 'act' && b?.kind === 'const') {
        set({ kind: 'act', node: push(name, n.opType, { kind: 'const-binary', fn, value: keep(layoutConst(b, a.shape.length)), constFirst: false }, [a.node]), shape: a.shape });
      } else if (a?.kind === 'const' && b?.kind === 'act') {
        set({ kind: 'act', node: push(name, n.opType, { kind: 'const-binary', fn, value: keep(layoutConst(a, b.shape.length)), constFirst: true }, [b.node]), shape: b.shape });
      } else refuse('has an operand advkit does not track');
    }
    function conv(): void {
      const x = act();
      const wv = konst(1);
      if (!wv || wv.dims.length !== 4) refuse('has a filter that is not a constant 4-D tensor (2-D convolutions only)');
      const [co, ciPerGroup, kh, kw] = wv!.dims as [number, number, number, number];
      const groups = aInt('group', 1);
      const ci = x.shape[1]!;
      if (ciPerGroup * groups !== ci) refuse(`has filters for ${ciPerGroup * groups} input channels but its input has ${ci}`);
      const strides = (aInts('strides') ?? [1, 1]) as [number, number];
      const dilations = (aInts('dilations') ?? [1, 1]) as [number, number];
      const autoPad = aStr('auto_pad') ?? 'NOTSET';
      const p = aInts('pads') ?? [0, 0, 0, 0];
      let pad: Padding;
      if (autoPad === 'VALID') pad = 'valid';
      else if (autoPad === 'SAME_UPPER') pad = 'same';
      else if (autoPad === 'NOTSET') pad = p.every((v) => v === 0) ? 'valid' : [[p[0]!, p[2]!], [p[1]!, p[3]!]];
      else return refuse(`has auto_pad ${autoPad}`);
      const [t, l, b, r] = typeof pad === 'string' ? [0, 0, 0, 0] : [pad[0][0], pad[1][0], pad[0][1], pad[1][1]];
      const outHW = (size: number, k: number, s: number, d: number, lo: number, hi: number) => (pad === 'same' ? Math.ceil(size / s) : Math.floor((size + lo + hi - d * (k - 1) - 1) / s) + 1);
      const shape = [x.shape[0]!, co, outHW(x.shape[2]!, kh, strides[0], dilations[0], t, b), outHW(x.shape[3]!, kw, strides[1], dilations[1], l, r)];
      const bias = konst(2) ? keep(tf.tensor1d(konst(2)!.values as Float32Array)) : undefined;
      const W = tf.tensor4d(wv!.values as Float32Array, [co, ciPerGroup, kh, kw]);
      if (groups === 1) {
        const filter = keep(tf.transpose(W, [2, 3, 1, 0]));
        set({ kind: 'act', node: push(name, n.opType, { kind: 'conv', depthwise: false, filter, bias, strides, pad, dilations, act: 'linear' }, [x.node]), shape });
      } else if (groups === ci && co % ci === 0) {
        // Depthwise: output channel c·m + j reads input channel c, as TF's depthwise conv orders them.
        const filter = keep(tf.transpose(tf.reshape(W, [ci, co / ci, kh, kw]), [2, 3, 0, 1]));
        set({ kind: 'act', node: push(name, n.opType, { kind: 'conv', depthwise: true, filter, bias, strides, pad, dilations, act: 'linear' }, [x.node]), shape });
      } else {
        // Group convolution: each group's channels (a slice) through its own filters, concatenated.
        const biases = bias ? tf.split(bias.read(), groups, 0).map((bg) => keep(bg)) : undefined;
        const parts = tf.split(W, groups, 0).map((wg, k) => {
          const slice = push(`${name}:slice${k}`, n.opType, { kind: 'slice', begin: k * ciPerGroup, size: ciPerGroup }, [x.node]);
          return push(`${name}:group${k}`, n.opType, { kind: 'conv', depthwise: false, filter: keep(tf.transpose(wg, [2, 3, 1, 0])), ...(biases ? { bias: biases[k] } : {}), strides, pad, dilations, act: 'linear' }, [slice]);
        });
        notes.push(`Conv '${name}' has ${groups} groups: it runs as ${groups} convolutions on channel slices, concatenated`);
        set({ kind: 'act', node: push(name, n.opType, { kind: 'concat', axis: 3 }, parts), shape });
      }
      W.dispose();
    }
    function dense(): void {
      const x = act();
      const bv = konst(1);
      if (x.shape.length !== 2) refuse(`multiplies a rank-${x.shape.length} tensor (advkit multiplies [N, features])`);
      if (!bv || bv.dims.length !== 2) refuse('has a weight that is not a constant matrix');
      const transA = aInt('transA', 0);
      if (transA) refuse('has transA');
      const transB = n.opType === 'Gemm' ? aInt('transB', 0) : 0;
      const [alpha, beta] = n.opType === 'Gemm' ? [aFloat('alpha', 1), aFloat('beta', 1)] : [1, 1];
      let B = tf.tensor2d(bv!.values as Float32Array, bv!.dims as [number, number]);
      if (transB) B = tf.transpose(B);
      if (B.shape[0] !== x.shape[1]) refuse(`has a weight [${B.shape.join(', ')}] for ${x.shape[1]} features`);
      const kernel = keep(alpha === 1 ? B : tf.mul(B, alpha));
      const cv = n.opType === 'Gemm' ? konst(2) : undefined;
      if (n.opType === 'Gemm' && ins[2] && !cv) refuse('has a bias that is not a constant');
      const bias = cv ? keep(tf.mul(tf.broadcastTo(tf.reshape(tf.tensor(cv.values as Float32Array), [-1]), [B.shape[1]!]), beta)) : undefined;
      set({ kind: 'act', node: push(name, n.opType, { kind: 'dense', kernel, bias, act: 'linear' }, [x.node]), shape: [x.shape[0]!, B.shape[1]!] });
    }
    function pool(): void {
      const x = act();
      const k = aInts('kernel_shape') as [number, number];
      const s = (aInts('strides') ?? [1, 1]) as [number, number];
      const p = aInts('pads') ?? [0, 0, 0, 0];
      const dil = aInts('dilations');
      if (dil && dil.some((d) => d !== 1)) refuse('has dilations');
      const ceil = aInt('ceil_mode', 0) === 1;
      const autoPad = aStr('auto_pad') ?? 'NOTSET';
      const max = n.opType === 'MaxPool';
      if (n.output.length > 1 && n.output[1]) refuse('returns indices');
      const [H, W] = [x.shape[2]!, x.shape[3]!];
      const outOf = (size: number, kk: number, ss: number, lo: number, hi: number) => (ceil ? Math.ceil : Math.floor)((size + lo + hi - kk) / ss) + 1;
      if (autoPad === 'SAME_UPPER' || autoPad === 'VALID' || (autoPad === 'NOTSET' && p.every((v) => v === 0) && !ceil)) {
        const pad = autoPad === 'SAME_UPPER' ? 'same' : 'valid';
        const shape = pad === 'same' ? [x.shape[0]!, x.shape[1]!, Math.ceil(H / s[0]), Math.ceil(W / s[1])] : [x.shape[0]!, x.shape[1]!, outOf(H, k[0], s[0], 0, 0), outOf(W, k[1], s[1], 0, 0)];
        if (!max && pad === 'same' && aInt('count_include_pad', 0) === 1) refuse('averages over padding with auto_pad SAME');
        set({ kind: 'act', node: push(name, n.opType, { kind: 'pool', type: max ? 'max' : 'avg', filterSize: k, strides: s, pad }, [x.node]), shape });
        return;
      }
      if (autoPad !== 'NOTSET') refuse(`has auto_pad ${autoPad}`);
      // Explicit padding (PyTorch's max_pool2d(x, 3, 2, 1)): padded by -inf for max (zeros counted or not for average),
      // ceil_mode by one more row/column at the end, then a valid pool.
      const [t, l, b, r] = [p[0]!, p[1]!, p[2]!, p[3]!];
      const oh = outOf(H, k[0], s[0], t, b);
      const ow = outOf(W, k[1], s[1], l, r);
      const extraH = Math.max(0, (oh - 1) * s[0] + k[0] - (H + t + b));
      const extraW = Math.max(0, (ow - 1) * s[1] + k[1] - (W + l + r));
      const includePad = aInt('count_include_pad', 0) === 1;
      const padding: Array<[number, number]> = [[0, 0], [t, b + extraH], [l, r + extraW], [0, 0]];
      // As compiler ops: the pad, a valid pool, and for an average the window sum over its count.
      const padded = push(`${name}:pad`, n.opType, { kind: 'pad', pads: [padding[1]!, padding[2]!], ...(max ? { value: -3.4e38 } : {}) }, [x.node]);
      const pooled = push(max ? name : `${name}:pool`, n.opType, { kind: 'pool', type: max ? 'max' : 'avg', filterSize: k, strides: s, pad: 'valid' }, [padded]);
      if (max) { set({ kind: 'act', node: pooled, shape: [x.shape[0]!, x.shape[1]!, oh, ow] }); return; }
      // The divisor: every window's cells (padding counted, ceil-mode overhang not), or its cells inside the image.
      const scale = new Float32Array(oh * ow);
      const cells = (o: number, ss: number, kk: number, lo: number, size: number) => Math.min(o * ss - lo + kk, size) - Math.max(o * ss - lo, 0);
      for (let yy = 0; yy < oh; yy++) for (let xx = 0; xx < ow; xx++) {
        const count = includePad ? cells(yy, s[0], k[0], 0, H + t + b) * cells(xx, s[1], k[1], 0, W + l + r) : cells(yy, s[0], k[0], t, H) * cells(xx, s[1], k[1], l, W);
        scale[yy * ow + xx] = (k[0] * k[1]) / count;
      }
      set({ kind: 'act', node: push(name, n.opType, { kind: 'const-binary', fn: 'mul', value: keep(tf.tensor4d(scale, [1, oh, ow, 1])), constFirst: false }, [pooled]), shape: [x.shape[0]!, x.shape[1]!, oh, ow] });
    }
    function flattenTo(x: Extract<Value, { kind: 'act' }>, features: number): void {
      if (x.shape.length === 2) { set(x); return; }
      if (x.shape.length !== 4) refuse(`flattens a rank-${x.shape.length} tensor`);
      // NHWC holds a feature map in another order than PyTorch's NCHW flatten: unless the map is
      // 1x1, the channels go first before the reshape, so the next layer's weights read what they were trained on.
      const op: Op = x.shape[2] === 1 && x.shape[3] === 1 ? { kind: 'reshape', shape: [features] }
        : { kind: 'reshape', shape: [features], channelsFirst: true };
      set({ kind: 'act', node: push(name, n.opType, op, [x.node]), shape: [x.shape[0]!, features] });
    }
    function reshape(): void {
      const v = ins[0];
      const target = ints(1);
      if (!v || v.kind === 'const') return refuse('reshapes a value advkit does not track');
      const elems = v.shape.slice(1).reduce((a, b) => a * b, 1);
      // Resolve ONNX's 0 (copy) and -1 (infer); the batch is -1 in tracked shapes.
      const out = target.map((d, i) => (d === 0 ? v.shape[i]! : d));
      const known = out.slice(1).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      if (out[0] !== BATCH && out[0] !== -1) refuse(`reshapes the batch to ${out[0]}`);
      const rest = out.slice(1).map((d) => (d === -1 ? elems / known : d));
      if (rest.some((d) => !Number.isInteger(d) || d <= 0) || rest.reduce((a, b) => a * b, 1) !== elems) refuse(`reshapes [${v.shape.join(', ')}] to ${JSON.stringify(target)}`);
      const shape = [BATCH, ...rest];
      if (v.kind === 'grouped') {
        if (shape.length !== 4 || shape[1] !== v.shape[1]! * v.shape[2]! || shape[2] !== v.shape[3] || shape[3] !== v.shape[4]) refuse('reshapes a grouped view other than back to [n, c, h, w]');
        if (!v.swapped) { set({ kind: 'act', node: v.node, shape }); return; }
        // The channel shuffle: output channel j·g + i is input channel i·(c/g) + j, as in NHWC
        // [.., g, c/g] transposed to [.., c/g, g].
        const groups = v.groups;
        set({ kind: 'act', node: push(name, 'ChannelShuffle', { kind: 'shuffle', groups }, [v.node]), shape });
        return;
      }
      if (v.shape.length === 4 && shape.length === 5 && shape[3] === v.shape[2] && shape[4] === v.shape[3] && shape[1]! * shape[2]! === v.shape[1]) {
        set({ kind: 'grouped', node: v.node, shape, groups: shape[1]!, swapped: false });
        return;
      }
      if (shape.length === 2) { flattenTo(v, shape[1]!); return; }
      if (v.shape.length === 2 && shape.length === 2) { set(v); return; }
      refuse(`reshapes [${v.shape.join(', ')}] to [${shape.join(', ')}]`);
    }
    function channelSlices(): void {
      const x = act();
      const rank = x.shape.length;
      const chans = x.shape[1]!;
      const axisOf = (a: number) => (a + rank) % rank;
      let parts: Array<[number, number]>;
      if (n.opType === 'Split') {
        if (axisOf(aInt('axis', 0)) !== 1) refuse('splits along an axis other than the channels');
        const sizes = opset >= 13 && n.input[1] ? ints(1) : aInts('split') ?? Array(n.output.length).fill(chans / n.output.length);
        let at = 0;
        parts = sizes.map((s) => { const p: [number, number] = [at, s]; at += s; return p; });
      } else {
        const starts = opset >= 10 ? ints(1) : aInts('starts')!;
        const ends = opset >= 10 ? ints(2) : aInts('ends')!;
        const axes = (opset >= 10 && n.input[3] ? ints(3) : aInts('axes') ?? starts.map((_, i) => i)).map(axisOf);
        const steps = opset >= 10 && n.input[4] ? ints(4) : starts.map(() => 1);
        if (axes.length !== 1 || axes[0] !== 1 || steps[0] !== 1) refuse('slices other than a run of channels');
        const clamp = (v: number) => Math.max(0, Math.min(chans, v < 0 ? v + chans : v));
        const [s0, e0] = [clamp(starts[0]!), clamp(ends[0]!)];
        parts = [[s0, Math.max(0, e0 - s0)]];
      }
      parts.forEach(([begin, size], k) => {
        const shape = [...x.shape];
        shape[1] = size;
        set({ kind: 'act', node: push(`${name}:${k}`, n.opType, { kind: 'slice', begin, size }, [x.node]), shape }, k);
      });
    }
  };

  const out = get(head, { opType: 'output', input: [], output: [] } as OnnxNode);
  if (out.kind !== 'act') throw new ModelError(`Error in the ONNX model: its output '${head}' is not computed from the input.`);
  if (out.shape.length !== 2) throw new ModelError(`Error in the ONNX model: its output '${head}' has shape [${out.shape.join(', ')}], not [batch, classes].`);
  return { graph: { nodes, output: out.node, outputKind: 'logits', merged: [], notes, owned }, inputShape: [h, w, c], outputs, head, units: out.shape[1]! };
}

/** Folds an op over constants (shape arithmetic). */
function foldConstant(n: OnnxNode, ins: Array<Extract<Value, { kind: 'const' }> | undefined>, refuse: (why: string) => never, aInt: (k: string, d: number) => number, aInts: (k: string) => number[] | undefined): Value {
  const v = (k: number) => Array.from((ins[k]?.values ?? []) as ArrayLike<number>);
  const first = ins[0]!;
  const isInt = first.isInt;
  const make = (values: number[], dims: number[], int = isInt): Value => ({ kind: 'const', dims, values: int ? values : Float32Array.from(values), isInt: int });
  switch (n.opType) {
    case 'Identity': return first;
    case 'Cast': { const to = aInt('to', 1); const int = [6, 7, 2, 3, 4, 5, 9].includes(to); return make(v(0).map((x) => (int ? Math.trunc(x) : x)), first.dims, int); }
    case 'Gather': {
      const idx = v(1);
      const axis = aInt('axis', 0);
      if (axis !== 0 || first.dims.length > 1) refuse('gathers from a constant other than a vector');
      const data = v(0);
      const picked = idx.map((i) => data[i < 0 ? i + data.length : i]!);
      return make(picked, ins[1]!.dims);
    }
    case 'Unsqueeze': case 'Squeeze': case 'Reshape': {
      const data = v(0);
      return make(data, data.length === 1 && n.opType !== 'Squeeze' ? [1] : n.opType === 'Squeeze' ? [] : [data.length]);
    }
    case 'Concat': return make(ins.flatMap((_, k) => v(k)), [ins.reduce((a, x) => a + (x?.values.length ?? 0), 0)]);
    case 'Add': case 'Sub': case 'Mul': case 'Div': {
      const [a, b] = [v(0), v(1)];
      const len = Math.max(a.length, b.length);
      const at = (x: number[], i: number) => x[x.length === 1 ? 0 : i]!;
      const f = { Add: (x: number, y: number) => x + y, Sub: (x: number, y: number) => x - y, Mul: (x: number, y: number) => x * y, Div: (x: number, y: number) => (isInt ? Math.trunc(x / y) : x / y) }[n.opType as 'Add'];
      // The batch (-1 in a folded shape) is unknown: arithmetic on it is refused rather than guessed.
      const out = Array.from({ length: len }, (_, i) => (at(a, i) === -1 || at(b, i) === -1 ? NaN : f(at(a, i), at(b, i))));
      if (out.some((x) => Number.isNaN(x))) refuse('computes with the batch size');
      return make(out, (a.length >= b.length ? ins[0] : ins[1])!.dims);
    }
    case 'Floor': case 'Ceil': return make(v(0).map(n.opType === 'Floor' ? Math.floor : Math.ceil), first.dims);
    case 'ConstantOfShape': refuse('makes a tensor of a computed shape'); break;
    case 'Slice': {
      const data = v(0);
      const [s, e] = [v(1)[0] ?? 0, v(2)[0] ?? data.length];
      const clamp = (x: number) => Math.max(0, Math.min(data.length, x < 0 ? x + data.length : x));
      return make(data.slice(clamp(s), clamp(e)), [Math.max(0, clamp(e) - clamp(s))]);
    }
  }
  void aInts;
  return refuse('folds in a way advkit does not read');
}
