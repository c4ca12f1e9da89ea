/**
 * A model's inputs and output heads, as a user names them.
 *
 * GraphModels the TensorFlow.js converter writes from a TF2 SavedModel carry a `signature` whose
 * keys are not node names: output key `activation_6` is tensor `Identity:0`, input key `images`
 * may be tensor `serving_default_images:0`. tfjs' GraphModel reports `inputNodes`/`outputNodes`
 * by those keys, so the compiler resolves every endpoint through the signature to a node and a
 * slot. A model without a signature has its placeholders as inputs and its childless nodes as
 * outputs (tfjs' own rule).
 *
 * A head is one output: a signature key, a node (`name` or `name:slot`) or, in a LayersModel,
 * an output layer. A model with several heads is attacked through the one a user chooses.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelError } from '../../util/errors.js';

/** One endpoint of a graph: the name a user sees, the node and output slot it reads. */
export interface GraphEndpoint {
  /** The signature key, else the node name (with `:slot` when the slot is not 0). */
  key: string;
  node: string;
  slot: number;
  /** From the signature or the placeholder (-1 for an unknown dimension), when known. */
  shape?: number[];
  dtype?: string;
}

/** One output a classifier can be built on. */
export interface Head {
  /** What reports and refusals call it (signature key, node or layer name). */
  name: string;
  /** What the compiler reads: a graph tensor `node:slot`, or a LayersModel output index. */
  ref: string | number;
  /** Every spelling a user may give for it (`--head`). */
  aliases: string[];
  /** Its shape with -1 for the batch, when known. */
  shape?: number[];
}

interface SignatureEntry { name?: unknown; dtype?: unknown; tensorShape?: { dim?: Array<{ size?: string | number }>; unknownRank?: boolean } }
interface GraphDefNode { name: string; op: string; attr?: { shape?: { shape?: { dim?: Array<{ size?: string | number }>; unknownRank?: boolean } }; dtype?: { type?: string } } }

/** 'name:0' → ['name', 0]. */
export function tensorRef(s: string): [string, number] {
  const m = /^(.*?)(?::(\d+))?$/.exec(s)!;
  return [m[1]!, m[2] ? Number(m[2]) : 0];
}

const dims = (shape: { dim?: Array<{ size?: string | number }>; unknownRank?: boolean } | undefined): number[] | undefined =>
  shape && !shape.unknownRank && Array.isArray(shape.dim) ? shape.dim.map((d) => Number(d.size ?? -1)) : undefined;

function graphArtifacts(model: tf.GraphModel): { nodes: GraphDefNode[]; signature?: { inputs?: Record<string, SignatureEntry>; outputs?: Record<string, SignatureEntry> } } {
  const artifacts = (model as unknown as { artifacts?: tf.io.ModelArtifacts }).artifacts;
  const topology = artifacts?.modelTopology as { node?: GraphDefNode[] } | undefined;
  if (!topology?.node) throw new ModelError('Error in the GraphModel: it has no graph definition (modelTopology.node) to compile.');
  return { nodes: topology.node, signature: artifacts?.signature as never };
}

/**
 * The graph's inputs and outputs, resolved through its signature when it has one. Refuses a
 * signature entry whose tensor names no node of the graph.
 */
export function graphEndpoints(model: tf.GraphModel): { inputs: GraphEndpoint[]; outputs: GraphEndpoint[] } {
  const { nodes, signature } = graphArtifacts(model);
  const defs = new Map(nodes.map((n) => [n.name, n]));
  const fromSignature = (entries: Record<string, SignatureEntry> | undefined, side: string): GraphEndpoint[] | null => {
    if (!entries || typeof entries !== 'object' || Object.keys(entries).length === 0) return null;
    return Object.entries(entries).map(([key, e]) => {
      if (typeof e?.name !== 'string' || e.name === '') throw new ModelError(`Error in the GraphModel: signature ${side} '${key}' names no tensor (its "name" is ${JSON.stringify(e?.name)}); the model.json is corrupt.`);
      const [node, slot] = tensorRef(e.name);
      if (!defs.has(node)) throw new ModelError(`Error in the GraphModel: signature ${side} '${key}' is tensor '${e.name}', but the graph has no node '${node}'; the model.json is corrupt or was edited.`);
      return { key, node, slot, shape: dims(e.tensorShape), ...(typeof e.dtype === 'string' ? { dtype: e.dtype } : {}) };
    });
  };
  const placeholder = (n: GraphDefNode): GraphEndpoint => ({ key: n.name, node: n.name, slot: 0, shape: dims(n.attr?.shape?.shape), ...(n.attr?.dtype?.type ? { dtype: n.attr.dtype.type } : {}) });
  const inputs = fromSignature(signature?.inputs, 'input') ?? nodes.filter((n) => n.op.startsWith('Placeholder')).map(placeholder);
  // Without a signature, tfjs' outputs are the nodes nothing reads; outputNodes names them.
  const outputs = fromSignature(signature?.outputs, 'output') ?? model.outputNodes.map((ref) => {
    const [node, slot] = tensorRef(ref);
    return { key: ref, node, slot };
  });
  // A signature input's shape is the placeholder's when the signature leaves it out.
  for (const e of inputs) if (!e.shape) e.shape = dims(defs.get(e.node)?.attr?.shape?.shape);
  return { inputs, outputs };
}

/** The heads of a GraphModel: one per output endpoint. */
export function graphHeads(model: tf.GraphModel): Head[] {
  return graphEndpoints(model).outputs.map((e) => {
    const tensor = `${e.node}:${e.slot}`;
    const aliases = [...new Set([e.key, tensor, ...(e.slot === 0 ? [e.node] : [])])];
    return { name: e.key, ref: tensor, aliases, ...(e.shape ? { shape: e.shape } : {}) };
  });
}

/** The heads of a LayersModel: one per output, named by its layer (`name:k` when a layer gives several). */
export function layersHeads(model: tf.LayersModel): Head[] {
  const names = model.outputs.map((t) => t.sourceLayer.name);
  return model.outputs.map((t, i) => {
    const name = names.filter((n) => n === names[i]).length > 1 ? `${names[i]}:${t.tensorIndex}` : names[i]!;
    const given = (model as unknown as { outputNames?: string[] }).outputNames?.[i];
    return { name, ref: i, aliases: [...new Set([name, ...(given ? [given] : [])])], shape: t.shape.map((d) => d ?? -1) };
  });
}

/** `race_output [-1,5], gender_output [-1,2]`: heads for a refusal or a listing. */
export function describeHeads(heads: readonly Head[]): string {
  return heads.map((h) => `${h.name}${h.shape ? ` [${h.shape.join(',')}]` : ''}`).join(', ');
}

/**
 * The head a classifier is built on: the one named `requested` (any of its aliases), or the only
 * one. A model with several heads and no choice, or a name no head has, is refused with a line
 * listing the heads.
 */
export function chooseHead(fn: string, heads: readonly Head[], requested: string | undefined): Head {
  if (heads.length === 0) throw new ModelError(`Error in ${fn}: the model has no outputs.`);
  if (requested === undefined) {
    if (heads.length === 1) return heads[0]!;
    throw new ModelError(`Error in ${fn}: the model has ${heads.length} outputs (${describeHeads(heads)}); choose the one to attack with head (--head NAME).`);
  }
  const found = heads.find((h) => h.aliases.includes(requested));
  if (!found) throw new ModelError(`Error in ${fn}: head ${JSON.stringify(requested)} is not an output of the model; its outputs are ${describeHeads(heads)}.`);
  return found;
}
