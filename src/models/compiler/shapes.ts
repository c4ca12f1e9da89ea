/**
 * Shape inference on the compiler graph (ir.ts): each node's output shape for an image input
 * [batch, H, W, C], the batch written -1, by tfjs' own rules (conv and pool output sizes and
 * 'same' padding as computeConv2DInfo gives them, broadcasting as tf.add's). The ONNX emitter
 * (emit_onnx.ts) needs them for explicit paddings, transposed-conv output sizes and gradient
 * reductions. A fallback node's shape is unknown (null), and so is every shape that depends on it.
 */
import type { Graph, Op, Padding } from './ir.js';

export type Shape = number[];

/** Output size and padding before of one spatial axis (tfjs' computeConv2DInfo). */
export function axisGeometry(size: number, k: number, stride: number, dilation: number, pad: 'same' | 'valid' | [number, number]): { out: number; before: number; after: number } {
  const eff = (k - 1) * dilation + 1;
  if (pad === 'same') {
    const out = Math.ceil(size / stride);
    const total = Math.max((out - 1) * stride + eff - size, 0);
    const before = Math.floor(total / 2);
    return { out, before, after: total - before };
  }
  if (pad === 'valid') return { out: Math.floor((size - eff) / stride) + 1, before: 0, after: 0 };
  return { out: Math.floor((size + pad[0] + pad[1] - eff) / stride) + 1, before: pad[0], after: pad[1] };
}

/** The spatial geometry of a conv or pool on an [N, H, W, C] input: output sizes and explicit pads. */
export function spatialGeometry(inShape: Shape, kernel: [number, number], strides: [number, number], dilations: [number, number], pad: Padding): { out: [number, number]; pads: [[number, number], [number, number]] } {
  const axis = (d: 0 | 1) => axisGeometry(inShape[1 + d]!, kernel[d], strides[d], dilations[d], typeof pad === 'string' ? pad : pad[d]);
  const h = axis(0);
  const w = axis(1);
  return { out: [h.out, w.out], pads: [[h.before, h.after], [w.before, w.after]] };
}

/** NumPy broadcasting of two shapes (-1 is the batch and broadcasts like any size > 1). */
export function broadcastShapes(a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function opShape(op: Op, ins: Shape[]): Shape | null {
  const x = ins[0]!;
  switch (op.kind) {
    case 'input': return x;
    case 'conv': {
      const [kh, kw, , co] = op.filter.read().shape as number[];
      const { out } = spatialGeometry(x, [kh!, kw!], op.strides, op.dilations, op.pad);
      return [x[0]!, out[0], out[1], op.depthwise ? x[3]! * co! : co!];
    }
    case 'dense': return [...x.slice(0, -1), op.kernel.read().shape[1]!];
    case 'batchnorm': case 'act': case 'affine': case 'identity': case 'dropout': return x;
    case 'binary': return ins.slice(1).reduce((acc, b) => broadcastShapes(acc, b), x);
    case 'const-binary': return broadcastShapes(x, op.value.read().shape);
    case 'concat': {
      const axis = op.axis < 0 ? op.axis + x.length : op.axis;
      const out = [...x];
      out[axis] = ins.reduce((s, t) => s + t[axis]!, 0);
      return out;
    }
    case 'pad': return [x[0]!, x[1]! + op.pads[0][0] + op.pads[0][1], x[2]! + op.pads[1][0] + op.pads[1][1], x[3]!];
    case 'crop': return [x[0]!, x[1]! - op.crop[0][0] - op.crop[0][1], x[2]! - op.crop[1][0] - op.crop[1][1], x[3]!];
    case 'pool': {
      const { out } = spatialGeometry(x, op.filterSize, op.strides, [1, 1], op.pad);
      return [x[0]!, out[0], out[1], x[3]!];
    }
    case 'reduce': {
      const axes = new Set(op.axes.map((a) => (a < 0 ? a + x.length : a)));
      return op.keepDims ? x.map((d, i) => (axes.has(i) ? 1 : d)) : x.filter((_, i) => !axes.has(i));
    }
    case 'reshape': {
      const known = x.slice(1).reduce((a, b) => a * b, 1);
      const fixed = op.shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      return [x[0]!, ...op.shape.map((d) => (d === -1 ? known / fixed : d))];
    }
    case 'squeeze': {
      const axes = new Set(op.axes.map((a) => (a < 0 ? a + x.length : a)));
      return x.filter((_, i) => !axes.has(i));
    }
    case 'slice': return [...x.slice(0, -1), op.size];
    case 'shuffle': return x;
    case 'fallback': return null;
  }
}

/**
 * Every node's output shape for images [batch, ...inputShape] (batch -1); null for a fallback
 * node and the nodes that read one.
 */
export function inferShapes(g: Graph, inputShape: readonly number[]): Array<Shape | null> {
  const shapes: Array<Shape | null> = [];
  for (const node of g.nodes) {
    if (node.op.kind === 'input') { shapes.push([-1, ...inputShape]); continue; }
    const ins = node.inputs.map((j) => shapes[j]);
    shapes.push(ins.some((s) => !s) ? null : opShape(node.op, ins as Shape[]));
  }
  return shapes;
}
