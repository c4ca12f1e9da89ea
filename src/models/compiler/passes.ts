/**
 * Rewrites of the compiler's graph (ir.ts), each keeping the function the graph computes:
 *
 * - the output: a final softmax is cut (its input is the logits); a final sigmoid is cut and
 *   marked, and the classifier turns its one unit z into the two logits [0, z] (same decisions,
 *   honest gradients);
 * - a bias add of a constant vector after a conv/dense without bias becomes its bias (graphs
 *   converted without fusion);
 * - an inference batch norm whose input is a conv/dense used only by it is folded into that
 *   layer's weights (folded again whenever the weights change: backend/fused.ts);
 * - a ReLU or ReLU6 after a conv/dense used only by it becomes the layer's fused activation;
 * - a zero padding used only by a 'valid' conv becomes the conv's explicit padding;
 * - identities (Dropout in inference, Identity ops, cut and folded nodes) and nodes the output
 *   does not depend on are removed.
 */
import type { Graph, Node, Op } from './ir.js';

function consumers(g: Graph): number[] {
  const count = new Array<number>(g.nodes.length).fill(0);
  for (const n of g.nodes) for (const i of n.inputs) count[i]!++;
  count[g.output]!++;
  return count;
}

/** Follows identities from node i to the node that computes its value. */
function through(g: Graph, i: number): number {
  let j = i;
  while (g.nodes[j]!.op.kind === 'identity') j = g.nodes[j]!.inputs[0]!;
  return j;
}

function toIdentity(node: Node, input: number): void {
  node.op = { kind: 'identity' };
  node.inputs = [input];
}

function cutOutput(g: Graph): void {
  const out = g.nodes[through(g, g.output)]!;
  if (out.op.kind === 'act' && (out.op.fn === 'softmax' || out.op.fn === 'sigmoid')) {
    g.outputKind = out.op.fn === 'softmax' ? 'softmax-cut' : 'sigmoid-binary';
    g.output = out.inputs[0]!;
    g.merged.push(`${out.source} '${out.name}' (${out.op.fn}) cut: the logits are its input`);
  }
}

type Layer = Extract<Op, { kind: 'conv' | 'dense' }>;
function asLayer(op: Op): Layer | null {
  return op.kind === 'conv' || op.kind === 'dense' ? op : null;
}

/** Output channels of a conv (depthwise: channels × multiplier) or dense layer. */
function outChannels(layer: Layer): number {
  if (layer.kind === 'dense') return layer.kernel.read().shape[1]!;
  const s = layer.filter.read().shape;
  return layer.depthwise ? s[2]! * s[3]! : s[3]!;
}

function foldIntoLayers(g: Graph): void {
  const uses = consumers(g);
  g.nodes.forEach((node, index) => {
    const op = node.op;
    if (op.kind !== 'batchnorm' && op.kind !== 'act' && op.kind !== 'const-binary') return;
    const pi = through(g, node.inputs[0]!);
    const prev = g.nodes[pi]!;
    const layer = asLayer(prev.op);
    if (!layer || uses[pi] !== 1) return;
    if (op.kind === 'batchnorm' && layer.act === 'linear' && !layer.bn) {
      layer.bn = op.bn;
      g.merged.push(`${node.source} '${node.name}' folded into '${prev.name}'`);
      toIdentity(node, pi);
    } else if (op.kind === 'act' && (op.fn === 'relu' || op.fn === 'relu6') && layer.act === 'linear') {
      layer.act = op.fn;
      g.merged.push(`${node.source} '${node.name}' (${op.fn}) fused into '${prev.name}'`);
      toIdentity(node, pi);
    } else if (op.kind === 'const-binary' && op.fn === 'add' && !op.constFirst && !layer.bias && !layer.bn && layer.act === 'linear') {
      const shape = op.value.read().shape;
      if (shape.length !== 1 || shape[0] !== outChannels(layer)) return;
      layer.bias = op.value;
      g.merged.push(`${node.source} '${node.name}' (bias) merged into '${prev.name}'`);
      toIdentity(node, pi);
    } else {
      return;
    }
    // The layer's value is now the folded node's: it has that node's consumers.
    uses[pi] = uses[index]!;
  });
}

function mergePadding(g: Graph): void {
  const uses = consumers(g);
  for (const node of g.nodes) {
    if (node.op.kind !== 'conv' || node.op.pad !== 'valid') continue;
    const pi = through(g, node.inputs[0]!);
    const pad = g.nodes[pi]!;
    if (pad.op.kind !== 'pad' || pad.op.value || uses[pi] !== 1) continue;
    node.op.pad = pad.op.pads;
    node.inputs = [pad.inputs[0]!];
    g.merged.push(`${pad.source} '${pad.name}' merged into the padding of '${node.name}'`);
  }
}

/** A max pool whose input is a ReLU conv used only by it applies the ReLU's mask in its gradient. */
function maskInPool(g: Graph): void {
  const uses = consumers(g);
  for (const node of g.nodes) {
    if (node.op.kind !== 'pool' || node.op.type !== 'max') continue;
    const conv = g.nodes[node.inputs[0]!]!.op;
    if (conv.kind !== 'conv' || conv.depthwise || conv.act !== 'relu' || uses[node.inputs[0]!] !== 1) continue;
    conv.maskedByPool = true;
    node.op.reluInput = true;
  }
}

/** Drops identities and nodes the output does not need; inputs are kept. */
function prune(g: Graph): void {
  for (const node of g.nodes) node.inputs = node.inputs.map((i) => through(g, i));
  g.output = through(g, g.output);
  const live = new Array<boolean>(g.nodes.length).fill(false);
  live[g.output] = true;
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    if (!live[i] && g.nodes[i]!.op.kind !== 'input') continue;
    live[i] = true;
    for (const j of g.nodes[i]!.inputs) live[j] = true;
  }
  const index = new Array<number>(g.nodes.length).fill(-1);
  const kept: Node[] = [];
  g.nodes.forEach((n, i) => {
    if (!live[i]) return;
    index[i] = kept.length;
    kept.push(n);
  });
  for (const n of kept) n.inputs = n.inputs.map((i) => index[i]!);
  g.output = index[g.output]!;
  g.nodes = kept;
}

/** Runs every pass, in order, on `g` (in place) and returns it. */
export function optimize(g: Graph, options: { cutOutput: boolean } = { cutOutput: true }): Graph {
  if (options.cutOutput) cutOutput(g);
  prune(g);
  foldIntoLayers(g);
  prune(g);
  // Second round: a bias merged into a conv can be followed by a batch norm and an activation.
  foldIntoLayers(g);
  mergePadding(g);
  prune(g);
  maskInPool(g);
  return g;
}
