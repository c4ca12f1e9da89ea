/**
 * The model compiler: any LayersModel (Sequential or functional) or GraphModel a user brings,
 * lowered to one graph (ir.ts), rewritten (passes.ts) and run (execute.ts) on advkit's fused
 * wasm ops, with a per-node fallback to tfjs for what it does not know. `compileModel` says what
 * compiled in `report` (`advkit inspect` prints it).
 *
 * The compiled forward returns the classifier's logits: a final softmax is cut, and a single
 * sigmoid unit z becomes the two logits [0, z] (the same decisions, honest gradients).
 */
import * as tf from '@tensorflow/tfjs';
import { getWasmKernelMode } from '../../backend/kernels/register_all_kernels.js';
import { createRuntime, disposeRuntime, execute, type Runtime } from './execute.js';
import type { Graph, Op } from './ir.js';
import { lowerGraphModel } from './graph_model.js';
import { lowerLayersModel } from './layers_model.js';
import { optimize } from './passes.js';

export type { Graph, Node, Op } from './ir.js';
export { chooseHead, describeHeads, graphEndpoints, graphHeads, layersHeads, type GraphEndpoint, type Head } from './heads.js';

export interface CompiledNode {
  name: string;
  source: string;
  /** The op it runs as ('conv', 'depthwise conv', 'dense', 'fallback', ...). */
  op: string;
  compiled: boolean;
  /** Why a fallback node did not compile. */
  reason?: string;
  /** The fused activation and batch norm, if any ('relu6, batch norm folded'). */
  fused?: string;
}

export interface CompileReport {
  format: 'layers-model' | 'graph-model' | 'onnx';
  nodes: CompiledNode[];
  /** Layers and ops merged into others (folded batch norms, fused activations, cut softmax). */
  merged: string[];
  outputKind: Graph['outputKind'];
  /** What a user should know about how a layer was read (tfjs semantics that differ from Keras). */
  notes: string[];
  /** Nodes that run through tfjs (0 when the whole model compiled). */
  fallbacks: number;
}

export interface CompiledModel {
  /** Logits for x (see the module comment); `training` runs batch norms and dropout in training mode. */
  forward(x: tf.Tensor, training: boolean): tf.Tensor;
  readonly report: CompileReport;
  readonly graph: Graph;
  /** Releases folded weights and constants (and drops it from compileModel's cache). */
  dispose(): void;
}

export interface CompileOptions {
  /** Cut a final softmax / sigmoid (default true). */
  cutOutput?: boolean;
  /**
   * The output to compile (heads.ts `Head.ref`): a GraphModel tensor `node:slot` or a LayersModel
   * output index; default the only output (a model with several is refused).
   */
  head?: string | number;
}

function describe(op: Op): { op: string; fused?: string } {
  switch (op.kind) {
    case 'conv': {
      const fused = [op.bias ? 'bias' : '', op.bn ? 'batch norm folded' : '', op.act !== 'linear' ? op.act : '', typeof op.pad === 'object' ? 'explicit padding' : ''].filter(Boolean).join(', ');
      return { op: op.depthwise ? 'depthwise conv' : 'conv', fused: fused || undefined };
    }
    case 'dense': {
      const fused = [op.bias ? 'bias' : '', op.bn ? 'batch norm folded' : '', op.act !== 'linear' ? op.act : ''].filter(Boolean).join(', ');
      return { op: 'dense', fused: fused || undefined };
    }
    case 'act': return { op: op.fn };
    case 'binary': case 'const-binary': return { op: op.fn };
    case 'pool': return { op: `${op.type} pool` };
    case 'reduce': return { op: `reduce ${op.type}` };
    default: return { op: op.kind };
  }
}

function wrap(graph: Graph, format: CompileReport['format']): CompiledModel {
  const rt: Runtime = createRuntime(graph);
  const report: CompileReport = {
    format,
    nodes: graph.nodes.map((n) => ({
      name: n.name, source: n.source, ...describe(n.op), compiled: n.op.kind !== 'fallback',
      ...(n.op.kind === 'fallback' ? { reason: n.op.reason } : {}),
    })),
    merged: [...graph.merged],
    notes: [...graph.notes],
    outputKind: graph.outputKind,
    fallbacks: graph.nodes.filter((n) => n.op.kind === 'fallback').length,
  };
  return {
    report,
    graph,
    forward: (x, training) => tf.tidy(() => {
      const fast = tf.getBackend() === 'wasm' && getWasmKernelMode() === 'advkit';
      const z = execute(graph, x, training, fast, rt);
      if (graph.outputKind !== 'sigmoid-binary') return z;
      const col = z.rank === 2 ? z : tf.reshape(z, [z.shape[0]!, -1]);
      return tf.concat([tf.zerosLike(col), col], 1);
    }),
    dispose: () => {
      disposeRuntime(rt);
      tf.dispose(graph.owned);
      graph.owned = [];
    },
  };
}

const cache = new WeakMap<object, Map<string, CompiledModel>>();

function cached(model: object, key: string, make: () => CompiledModel): CompiledModel {
  let byKey = cache.get(model);
  if (!byKey) cache.set(model, (byKey = new Map()));
  let compiled = byKey.get(key);
  if (!compiled) {
    const made = make();
    // A disposed compiled model leaves the cache: the next compileModel builds a new one.
    compiled = { ...made, dispose: () => { byKey!.delete(key); made.dispose(); } };
    byKey.set(key, compiled);
  }
  return compiled;
}

function build(graph: Graph, cut: boolean): Graph {
  return optimize(graph, { cutOutput: cut });
}

/** Compiles a graph a frontend lowered (an ONNX model's): the same passes and execution as compileModel's. */
export function compileGraph(graph: Graph, format: CompileReport['format'], options: CompileOptions = {}): CompiledModel {
  return wrap(build(graph, options.cutOutput ?? true), format);
}

/**
 * Compiles a LayersModel or GraphModel (cached per model and options). Throws an Error saying
 * why when the model's structure is outside what compiles (several inputs, or several outputs
 * and no head chosen).
 */
export function compileModel(model: tf.LayersModel | tf.GraphModel, options: CompileOptions = {}): CompiledModel {
  const cut = options.cutOutput ?? true;
  const head = options.head;
  const key = JSON.stringify([cut, head ?? null]);
  if (model instanceof tf.GraphModel) return cached(model, key, () => wrap(build(lowerGraphModel(model, head === undefined ? undefined : String(head)), cut), 'graph-model'));
  return cached(model, key, () => wrap(build(lowerLayersModel(model, typeof head === 'number' ? head : undefined), cut), 'layers-model'));
}
