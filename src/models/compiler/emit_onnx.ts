/**
 * Compiled graph (ir.ts) → ONNX, for the onnxruntime backend: the classifier's forward (images
 * NHWC in pixel space → logits, preprocessing and output transform included) and, for an attack
 * objective, forward + ∂objective/∂logits (emit_objective.ts) + the input gradient, written from
 * each op's vector-Jacobian product in standard ONNX ops (a conv's is a conv with the flipped
 * filter at stride 1, a ConvTranspose otherwise; a max pool's scatters into its argmax indices).
 *
 * Rank-4 values run NCHW (onnxruntime's layout; a transpose where a value changes layout, each
 * once), weights are read once and laid out for it, inference batch norm is folded into the
 * layer before it. Shapes come from shapes.ts. A fallback node cannot be written: emitOnnx throws
 * NotEmittable, and the classifier runs on wasm.
 */
import type { Graph } from './ir.js';
import { bnAffine, flipped, foldInto, oihw, values } from './emit_weights.js';
import { OnnxBuilder } from './onnx_builder.js';
import { broadcastShapes, inferShapes, spatialGeometry, type Shape } from './shapes.js';
import { emitActivation, emitActivationGrad, masked } from './emit_activations.js';
import { emitObjectiveGrad, objectiveInputs, type ObjectiveKind } from './emit_objective.js';

export class NotEmittable extends Error {}

export interface EmitOptions {
  /** Per-channel x·scale + offset before the graph (the classifier's input range and normalization). */
  preprocess?: { scale: number[]; offset: number[] };
  /** 'log': the graph's output is probabilities and the logits are their logarithms. */
  logOutput?: boolean;
  /** Emit the gradient of this objective too (inputs per objectiveInputs; outputs logits, grad). */
  objective?: ObjectiveKind;
}

interface Value { name: string; shape: Shape; nchw: boolean }

const NHWC_TO_NCHW = [0, 3, 1, 2];
/** Where NHWC axis a sits in NCHW. */
const toNchwAxis = (a: number) => [0, 2, 3, 1][a]!;
export function emitOnnx(g: Graph, inputShape: readonly number[], options: EmitOptions = {}): Uint8Array {
  const b = new OnnxBuilder();
  const shapes = inferShapes(g, inputShape);
  const needed = new Set<number>();
  const mark = (i: number) => { if (needed.has(i)) return; needed.add(i); g.nodes[i]!.inputs.forEach(mark); };
  mark(g.output);
  for (const i of needed) {
    const n = g.nodes[i]!;
    if (n.op.kind === 'fallback') throw new NotEmittable(`node '${n.name}' (${n.source}) runs through tfjs: ${n.op.reason}`);
  }
  const layoutCache = new Map<string, string>();
  const convert = (v: Value, nchw: boolean): Value => {
    if (v.shape.length !== 4 || v.nchw === nchw) return v;
    const key = `${v.name}>${nchw}`;
    let name = layoutCache.get(key);
    if (!name) { name = b.op('Transpose', [v.name], { perm: nchw ? NHWC_TO_NCHW : [0, 2, 3, 1] }); layoutCache.set(key, name); }
    return { name, shape: v.shape, nchw };
  };
  const phys = (v: { shape: Shape; nchw: boolean }) => (v.nchw ? NHWC_TO_NCHW.map((a) => v.shape[a]!) : v.shape);
  /** A constant of IR (NHWC-broadcast) shape `dims` laid out to broadcast against `like`. */
  const constLike = (data: Float32Array, dims: number[], like: Value): string => {
    if (!like.nchw || like.shape.length !== 4) return b.floats(data, dims);
    const d4 = [...Array(4 - dims.length).fill(1), ...dims] as number[];
    const [n, h, w, c] = d4 as [number, number, number, number];
    const out = new Float32Array(data.length);
    for (let a = 0; a < n; a++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[((a * c + k) * h + y) * w + x] = data[((a * h + y) * w + x) * c + k]!;
    return b.floats(out, [n, c, h, w]);
  };
  const perChannel = (data: ArrayLike<number>, like: Value) => (like.nchw ? b.floats(Float32Array.from(data), [data.length, 1, 1]) : b.floats(Float32Array.from(data), [data.length]));

  // Forward.
  let x: Value = { name: 'x', shape: [-1, ...inputShape], nchw: false };
  const pre = options.preprocess;
  if (pre) x = { ...x, name: b.op('Add', [b.op('Mul', ['x', b.floats(pre.scale, [pre.scale.length])]), b.floats(pre.offset, [pre.offset.length])]) };
  const out: Value[] = [];
  /** Backward closures per node: g (the node's output gradient, in its layout) → gradients of its inputs. */
  const back: Array<(gv: Value) => Array<Value | undefined>> = [];
  for (let i = 0; i < g.nodes.length; i++) {
    if (!needed.has(i)) continue;
    const node = g.nodes[i]!;
    const op = node.op;
    const shape = shapes[i]!;
    const ins = node.inputs.map((j) => out[j]!);
    const h = ins[0]!;
    let res: Value;
    let bk: (gv: Value) => Array<Value | undefined>;
    switch (op.kind) {
      case 'input': res = x; bk = () => []; break;
      case 'identity': case 'dropout': res = h; bk = (gv) => [gv]; break;
      case 'conv': {
        const xin = convert(h, true);
        const fshape = op.filter.read().shape as number[];
        const [kh, kw, ci, co] = fshape as [number, number, number, number];
        const groups = op.depthwise ? ci : 1;
        const outC = op.depthwise ? ci * co : co;
        const w = oihw(values(op.filter), fshape, op.depthwise);
        const wdims = op.depthwise ? [ci * co, 1, kh, kw] : [co, ci, kh, kw];
        const bias = foldInto(w, w.length / outC, op.bias ? values(op.bias) : undefined, op, outC);
        const geo = spatialGeometry(h.shape, [kh, kw], op.strides, op.dilations, op.pad);
        const pads = [geo.pads[0][0], geo.pads[1][0], geo.pads[0][1], geo.pads[1][1]];
        const common = { dilations: op.dilations, group: groups, kernel_shape: [kh, kw] };
        const wName = b.floats(w, wdims);
        const y = b.op('Conv', [xin.name, wName, b.floats(bias, [outC])], { ...common, pads, strides: op.strides });
        const ya = emitActivation(b, op.act, y, undefined);
        res = { name: ya, shape, nchw: true };
        bk = (gv) => {
          const gm = op.act === 'linear' ? gv.name : layerActivationGrad(b, op.act, ya, gv.name);
          const eff = [(kh - 1) * op.dilations[0] + 1, (kw - 1) * op.dilations[1] + 1] as const;
          const [H, W] = [h.shape[1]!, h.shape[2]!];
          const back = [eff[0] - 1 - pads[0]!, eff[1] - 1 - pads[1]!, eff[0] - 1 - pads[2]!, eff[1] - 1 - pads[3]!];
          if (op.strides[0] === 1 && op.strides[1] === 1 && back.every((p) => p >= 0)) {
            const f = flipped(w, wdims, groups);
            return [{ name: b.op('Conv', [gm, b.floats(f.data, f.dims)], { ...common, pads: back, strides: [1, 1] }), shape: h.shape, nchw: true }];
          }
          const outPad = [H - ((shape[1]! - 1) * op.strides[0] + eff[0] - pads[0]! - pads[2]!), W - ((shape[2]! - 1) * op.strides[1] + eff[1] - pads[1]! - pads[3]!)];
          return [{ name: b.op('ConvTranspose', [gm, wName], { ...common, pads, strides: op.strides, output_padding: outPad }), shape: h.shape, nchw: true }];
        };
        break;
      }
      case 'dense': {
        const xin = convert(h, false);
        const [inU, outU] = op.kernel.read().shape as [number, number];
        const k = Float32Array.from(values(op.kernel));
        const bias = foldInto(k, inU, op.bias ? values(op.bias) : undefined, op, outU, outU);
        const kName = b.floats(k, [inU, outU]);
        const y = h.shape.length === 2 ? b.op('Gemm', [xin.name, kName, b.floats(bias, [outU])]) : b.op('Add', [b.op('MatMul', [xin.name, kName]), b.floats(bias, [outU])]);
        const ya = emitActivation(b, op.act, y, undefined);
        res = { name: ya, shape, nchw: false };
        bk = (gv) => {
          const gm = op.act === 'linear' ? gv.name : layerActivationGrad(b, op.act, ya, gv.name);
          const dx = h.shape.length === 2 ? b.op('Gemm', [gm, kName], { transB: 1 }) : b.op('MatMul', [gm, b.op('Transpose', [kName], { perm: [1, 0] })]);
          return [{ name: dx, shape: h.shape, nchw: false }];
        };
        break;
      }
      case 'batchnorm': {
        const { scale, shift } = bnAffine(op.bn);
        const sc = perChannel(scale, h);
        res = { name: b.op('Add', [b.op('Mul', [h.name, sc]), perChannel(shift, h)]), shape, nchw: h.nchw };
        bk = (gv) => [{ name: b.op('Mul', [gv.name, sc]), shape, nchw: gv.nchw }];
        break;
      }
      case 'act': {
        const xin = op.fn === 'softmax' ? convert(h, false) : h;
        const slope = op.slopes ? constLike(values(op.slopes), op.slopes.read().shape, xin) : undefined;
        const y = emitActivation(b, op.fn, xin.name, op.alpha, slope, op.beta);
        res = { name: y, shape, nchw: xin.nchw };
        bk = (gv) => [{ name: emitActivationGrad(b, op.fn, xin.name, y, convert(gv, xin.nchw).name, op.alpha, slope, op.beta), shape, nchw: xin.nchw }];
        break;
      }
      case 'affine':
        res = { name: b.op('Add', [b.op('Mul', [h.name, b.scalar(op.scale)]), b.scalar(op.offset)]), shape, nchw: h.nchw };
        bk = (gv) => [{ name: b.op('Mul', [gv.name, b.scalar(op.scale)]), shape, nchw: gv.nchw }];
        break;
      case 'binary': {
        const nchw = ins.every((v) => v.shape.length === 4);
        const vs = ins.map((v) => convert(v, nchw));
        // Left to right; each step's operands kept for its VJP.
        const steps: Array<{ a: Value; b: Value; o: Value }> = [];
        let acc = vs[0]!;
        for (const v of vs.slice(1)) {
          const o: Value = { name: b.op(({ add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', max: 'Max', min: 'Min' } as const)[op.fn], [acc.name, v.name]), shape: broadcastShapes(acc.shape, v.shape), nchw };
          steps.push({ a: acc, b: v, o });
          acc = o;
        }
        res = acc;
        bk = (gv) => {
          const grads: Array<Value | undefined> = new Array(vs.length);
          let gcur = convert(gv, nchw).name;
          for (let k = steps.length - 1; k >= 0; k--) {
            const st = steps[k]!;
            const [ga, gb] = binaryGrad(b, op.fn, st.a.name, st.b.name, st.o.name, gcur);
            grads[k + 1] = { name: reduceTo(b, gb, phys(st.o), phys(st.b)), shape: st.b.shape, nchw };
            gcur = reduceTo(b, ga, phys(st.o), phys(st.a));
          }
          grads[0] = { name: gcur, shape: vs[0]!.shape, nchw };
          return grads;
        };
        break;
      }
      case 'const-binary': {
        const cv = constLike(values(op.value), op.value.read().shape, h);
        const opName = ({ add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', max: 'Max', min: 'Min' } as const)[op.fn];
        const y = b.op(opName, op.constFirst ? [cv, h.name] : [h.name, cv]);
        res = { name: y, shape, nchw: h.nchw };
        bk = (gv) => {
          const [ga, gb] = op.constFirst ? binaryGrad(b, op.fn, cv, h.name, y, gv.name) : binaryGrad(b, op.fn, h.name, cv, y, gv.name);
          return [{ name: reduceTo(b, op.constFirst ? gb : ga, phys(res), phys(h)), shape: h.shape, nchw: h.nchw }];
        };
        break;
      }
      case 'concat': {
        const rank = h.shape.length;
        const axis = op.axis < 0 ? op.axis + rank : op.axis;
        const nchw = rank === 4 && ins.every((v) => v.shape.length === 4);
        const vs = ins.map((v) => convert(v, nchw));
        const ax = nchw ? toNchwAxis(axis) : axis;
        res = { name: b.op('Concat', vs.map((v) => v.name), { axis: ax }), shape, nchw };
        bk = (gv) => {
          const parts = b.node('Split', [convert(gv, nchw).name, b.ints(vs.map((v) => v.shape[axis]!))], { axis: ax }, vs.length);
          return parts.map((name, k) => ({ name, shape: vs[k]!.shape, nchw }));
        };
        break;
      }
      case 'pad': case 'crop': {
        const xin = convert(h, true);
        const p = op.kind === 'pad' ? op.pads : op.crop;
        const padIt = (name: string, value = 0) => b.op('Pad', [name, b.ints([0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]]), b.scalar(value)]);
        const cropIt = (name: string, big: Shape) => b.op('Slice', [name, b.ints([p[0][0], p[1][0]]), b.ints([big[1]! - p[0][1], big[2]! - p[1][1]]), b.ints([2, 3])]);
        res = { name: op.kind === 'pad' ? padIt(xin.name, op.value ?? 0) : cropIt(xin.name, h.shape), shape, nchw: true };
        bk = (gv) => [{ name: op.kind === 'pad' ? cropIt(convert(gv, true).name, shape) : padIt(convert(gv, true).name), shape: h.shape, nchw: true }];
        break;
      }
      case 'pool': {
        const xin = convert(h, true);
        const geo = spatialGeometry(h.shape, op.filterSize, op.strides, [1, 1], op.pad);
        const pads = [geo.pads[0][0], geo.pads[1][0], geo.pads[0][1], geo.pads[1][1]];
        const attrs = { kernel_shape: op.filterSize, strides: op.strides, pads };
        if (op.type === 'max') {
          const [y, idx] = b.node('MaxPool', [xin.name], attrs, 2) as [string, string];
          res = { name: y, shape, nchw: true };
          bk = (gv) => {
            const shp = b.op('Shape', [xin.name]);
            const zeros = b.op('ConstantOfShape', [b.op('ReduceProd', [shp], { keepdims: 1 })]);
            const flat = (t: string) => b.op('Reshape', [t, b.ints([-1])]);
            const scattered = b.op('ScatterElements', [zeros, flat(idx), flat(convert(gv, true).name)], { axis: 0, reduction: 'add' });
            return [{ name: b.op('Reshape', [scattered, shp]), shape: h.shape, nchw: true }];
          };
        } else {
          const y = b.op('AveragePool', [xin.name], { ...attrs, count_include_pad: 0 });
          res = { name: y, shape, nchw: true };
          bk = (gv) => {
            const [H, W, C] = [h.shape[1]!, h.shape[2]!, h.shape[3]!];
            const [Ho, Wo] = geo.out;
            const inv = new Float32Array(Ho * Wo);
            const span = (o: number, s: number, k: number, before: number, size: number) => Math.min(o * s - before + k, size) - Math.max(o * s - before, 0);
            for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) inv[oy * Wo + ox] = 1 / (span(oy, op.strides[0], op.filterSize[0], pads[0]!, H) * span(ox, op.strides[1], op.filterSize[1], pads[1]!, W));
            const scaled = b.op('Mul', [convert(gv, true).name, b.floats(inv, [1, 1, Ho, Wo])]);
            const ones = b.floats(new Float32Array(C * op.filterSize[0] * op.filterSize[1]).fill(1), [C, 1, ...op.filterSize]);
            const outPad = [H - ((Ho - 1) * op.strides[0] + op.filterSize[0] - pads[0]! - pads[2]!), W - ((Wo - 1) * op.strides[1] + op.filterSize[1] - pads[1]! - pads[3]!)];
            return [{ name: b.op('ConvTranspose', [scaled, ones], { group: C, kernel_shape: op.filterSize, strides: op.strides, pads, output_padding: outPad }), shape: h.shape, nchw: true }];
          };
        }
        break;
      }
      case 'reduce': {
        const rank = h.shape.length;
        const axes = [...new Set(op.axes.map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
        const kept = Array.from({ length: rank }, (_, a) => a).filter((a) => !axes.includes(a));
        // Reduce in NCHW when the axes that remain keep their order there.
        const inNchw = h.nchw && rank === 4 && (op.keepDims || kept.map(toNchwAxis).every((a, k, all) => k === 0 || a > all[k - 1]!));
        const xin = convert(h, inNchw);
        const ax = inNchw ? axes.map(toNchwAxis).sort((p, q) => p - q) : axes;
        const y = b.op(op.type === 'mean' ? 'ReduceMean' : 'ReduceMax', [xin.name], { axes: ax, keepdims: op.keepDims ? 1 : 0 });
        res = { name: y, shape, nchw: inNchw && op.keepDims };
        const count = axes.reduce((m, a) => m * h.shape[a]!, 1);
        bk = (gv) => {
          const gk = op.keepDims ? convert(gv, inNchw).name : b.op('Unsqueeze', [gv.name, b.ints(ax)]);
          if (op.type === 'mean') return [{ name: b.op('Mul', [b.op('Expand', [gk, b.op('Shape', [xin.name])]), b.scalar(1 / count)]), shape: h.shape, nchw: inNchw }];
          const yk = op.keepDims ? y : b.op('Unsqueeze', [y, b.ints(ax)]);
          return [{ name: masked(b, b.op('Equal', [xin.name, yk]), b.op('Expand', [gk, b.op('Shape', [xin.name])])), shape: h.shape, nchw: inNchw }];
        };
        break;
      }
      case 'reshape': {
        // A channels-first reshape reads the NCHW order: the value goes NCHW first.
        const xin = convert(h, op.channelsFirst === true);
        res = { name: b.op('Reshape', [xin.name, b.ints([0, ...op.shape])]), shape, nchw: false };
        bk = (gv) => [{ name: b.op('Reshape', [convert(gv, false).name, b.ints([0, ...phys(xin).slice(1)])]), shape: h.shape, nchw: xin.nchw }];
        break;
      }
      case 'squeeze': {
        const xin = convert(h, false);
        const axes = op.axes.map((a) => (a < 0 ? a + h.shape.length : a));
        res = { name: b.op('Squeeze', [xin.name, b.ints(axes)]), shape, nchw: false };
        bk = (gv) => [{ name: b.op('Unsqueeze', [gv.name, b.ints(axes)]), shape: h.shape, nchw: false }];
        break;
      }
      case 'shuffle': {
        // On NCHW [n, g, c/g, h, w] with the two channel axes swapped; its VJP is the shuffle by c/g.
        const xin = convert(h, true);
        const c = h.shape[3]!;
        const shuffle = (t: string, groups: number) => b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [t, b.ints([0, groups, c / groups, h.shape[1]!, h.shape[2]!])])], { perm: [0, 2, 1, 3, 4] }), b.ints([0, c, h.shape[1]!, h.shape[2]!])]);
        if (h.shape.length !== 4) throw new NotEmittable(`node '${node.name}' shuffles the channels of a rank-${h.shape.length} value`);
        res = { name: shuffle(xin.name, op.groups), shape, nchw: true };
        bk = (gv) => [{ name: shuffle(convert(gv, true).name, c / op.groups), shape, nchw: true }];
        break;
      }
      case 'slice': {
        const rank = h.shape.length;
        const axis = h.nchw ? 1 : rank - 1;
        const total = h.shape[rank - 1]!;
        res = { name: b.op('Slice', [h.name, b.ints([op.begin]), b.ints([op.begin + op.size]), b.ints([axis])]), shape, nchw: h.nchw };
        bk = (gv) => {
          const pads = new Array<number>(2 * rank).fill(0);
          pads[axis] = op.begin;
          pads[rank + axis] = total - op.begin - op.size;
          return [{ name: b.op('Pad', [convert(gv, h.nchw).name, b.ints(pads)]), shape: h.shape, nchw: h.nchw }];
        };
        break;
      }
      case 'fallback': throw new NotEmittable(`node '${node.name}' runs through tfjs`);
    }
    out[i] = res;
    back[i] = bk;
  }

  // The logits.
  const z = convert(out[g.output]!, false);
  if (z.shape.length !== 2) throw new NotEmittable(`the output has shape [${z.shape.join(', ')}], not [batch, classes]`);
  let logits = z.name;
  let k = z.shape[1]!;
  if (g.outputKind === 'sigmoid-binary') { logits = b.op('Concat', [b.op('Sub', [z.name, z.name]), z.name], { axis: 1 }); k = 2; }
  if (options.logOutput) logits = b.op('Log', [b.op('Max', [logits, b.scalar(1e-30)])]);
  const logitsOut = b.op('Identity', [logits]);
  const kind = options.objective;
  if (!kind) return b.encode([{ name: 'x', shape: [-1, ...inputShape] }], [{ name: logitsOut, shape: [-1, k] }]);

  // Backward from ∂objective/∂logits.
  let dl = emitObjectiveGrad(b, kind, logits, k);
  if (options.logOutput) {
    const p = z.name;
    dl = masked(b, b.op('GreaterOrEqual', [p, b.scalar(1e-30)]), b.op('Div', [dl, b.op('Max', [p, b.scalar(1e-30)])]));
  }
  if (g.outputKind === 'sigmoid-binary') dl = b.op('Slice', [dl, b.ints([1]), b.ints([2]), b.ints([1])]);
  const grads: Array<Value | undefined> = new Array(g.nodes.length);
  grads[g.output] = { name: dl, shape: z.shape, nchw: false };
  let dx: Value | undefined;
  for (let i = g.output; i >= 0; i--) {
    const gv = grads[i];
    if (!gv || !needed.has(i)) continue;
    const node = g.nodes[i]!;
    if (node.op.kind === 'input') { dx = dx ? add(b, dx, gv, convert) : gv; continue; }
    const gin = back[i]!(convert(gv, out[i]!.nchw));
    node.inputs.forEach((j, k2) => {
      const c = gin[k2];
      if (!c) return;
      grads[j] = grads[j] ? add(b, grads[j]!, c, convert) : c;
    });
  }
  if (!dx) throw new NotEmittable('the logits do not depend on the input');
  let dxName = convert(dx, false).name;
  if (pre) dxName = b.op('Mul', [dxName, b.floats(pre.scale, [pre.scale.length])]);
  const gradOut = b.op('Identity', [dxName]);
  return b.encode([{ name: 'x', shape: [-1, ...inputShape] }, ...objectiveInputs(kind, k)], [{ name: logitsOut, shape: [-1, k] }, { name: gradOut, shape: [-1, ...inputShape] }]);
}

/**
 * A fused layer's ReLU / ReLU6 mask read from its output, 0 < out (< 6): the conv's output then
 * has one reader, so onnxruntime fuses the clamp into the conv (the pre-activation is never
 * written out). It equals the mask on the input but where the input is exactly 6.
 */
function layerActivationGrad(b: OnnxBuilder, act: 'relu' | 'relu6', out: string, g: string): string {
  const pos = b.op('Greater', [out, b.scalar(0)]);
  return masked(b, act === 'relu' ? pos : b.op('And', [pos, b.op('Less', [out, b.scalar(6)])]), g);
}

function add(b: OnnxBuilder, a: Value, c: Value, convert: (v: Value, nchw: boolean) => Value): Value {
  return { name: b.op('Add', [a.name, convert(c, a.nchw).name]), shape: a.shape, nchw: a.nchw };
}

/** The VJPs of a two-operand op o = a fn c at (a, c) for output gradient g. */
function binaryGrad(b: OnnxBuilder, fn: 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min', a: string, c: string, o: string, g: string): [string, string] {
  switch (fn) {
    case 'add': return [g, g];
    case 'sub': return [g, b.op('Neg', [g])];
    case 'mul': return [b.op('Mul', [g, c]), b.op('Mul', [g, a])];
    case 'div': return [b.op('Div', [g, c]), b.op('Neg', [b.op('Div', [b.op('Mul', [g, o]), c])])];
    case 'max': return [masked(b, b.op('GreaterOrEqual', [a, c]), g), masked(b, b.op('Less', [a, c]), g)];
    case 'min': return [masked(b, b.op('LessOrEqual', [a, c]), g), masked(b, b.op('Greater', [a, c]), g)];
  }
}

/** Sums gradient `g` of physical shape `from` down to a broadcast operand's shape `to`. */
function reduceTo(b: OnnxBuilder, g: string, from: Shape, to: Shape): string {
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let a = 0; a < from.length; a++) {
    const t = a < lead ? undefined : to[a - lead];
    if (t === undefined || (t === 1 && from[a] !== 1)) axes.push(a);
  }
  if (!axes.length) return g;
  const summed = b.op('ReduceSum', [g, b.ints(axes)], { keepdims: 1 });
  return lead ? b.op('Reshape', [summed, b.ints(to)]) : summed;
}
