/**
 * Checks of an untrusted model.json before TensorFlow.js builds anything from it: a LayersModel's
 * functional topology is acyclic and names only layers it has (tfjs-layers loops forever on a
 * layer whose inbound node names itself), every size a layer allocates weights by agrees with
 * the weights the manifest holds (a 2 KB model.json with `"units": 400000` would allocate 1.4 GB
 * before tfjs reports the mismatch), and every weight's shape is a list of whole numbers.
 */
import type * as tf from '@tensorflow/tfjs';
import { ModelError } from '../util/errors.js';

interface LayerJson { class_name?: unknown; name?: unknown; config?: Record<string, unknown> & { name?: unknown; layers?: unknown }; inbound_nodes?: unknown }

/** [layerName, nodeIndex, tensorIndex, ...] references in Keras 2's inbound_nodes and input/output_layers. */
function references(value: unknown): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  const walk = (v: unknown) => {
    if (!Array.isArray(v)) return;
    if (typeof v[0] === 'string' && typeof v[1] === 'number') out.push([v[0], v[1]]);
    else for (const x of v) walk(x);
  };
  walk(value);
  return out;
}

function modelConfig(topology: Record<string, unknown>): { className: string; config: LayerJson['config'] } | null {
  const t = (topology.model_config ?? topology) as LayerJson;
  if (!t || typeof t !== 'object' || typeof t.class_name !== 'string') return null;
  return { className: t.class_name, config: t.config };
}

const CONTAINERS = new Set(['Model', 'Functional', 'Sequential']);
const SIZED_KERNELS = new Set(['Dense', 'Conv1D', 'Conv2D', 'Conv3D']);
const SIZED_BIASES = new Set(['Dense', 'Conv1D', 'Conv2D', 'Conv3D', 'SeparableConv1D', 'SeparableConv2D', 'Conv2DTranspose', 'Conv3DTranspose', 'LocallyConnected1D', 'LocallyConnected2D']);

/** Refuses a functional topology with a dangling reference or a cycle; recurses into nested models. */
function checkLayers(where: string, className: string, config: LayerJson['config'], depth: number): void {
  if (depth > 32) throw new ModelError(`${where}: models are nested more than 32 deep; the model.json is not a model advkit loads.`);
  const layers = (Array.isArray(config) ? config : config?.layers) as LayerJson[] | undefined;
  if (!Array.isArray(layers)) return;
  const names = new Map<string, LayerJson>();
  for (const l of layers) {
    const name = l?.config?.name ?? l?.name;
    if (typeof name !== 'string') throw new ModelError(`${where}: a layer of ${className} has no name; the model.json is corrupt.`);
    if (names.has(name)) throw new ModelError(`${where}: two layers are named '${name}'; the model.json is corrupt.`);
    names.set(name, l);
    if (CONTAINERS.has(String(l.class_name))) checkLayers(where, String(l.class_name), l.config, depth + 1);
  }
  if (className === 'Sequential') return;
  const edges = new Map<string, string[]>();
  for (const [name, l] of names) {
    const refs = references(l.inbound_nodes);
    for (const [ref] of refs) if (!names.has(ref)) throw new ModelError(`${where}: layer '${name}' reads from '${ref}', which is not a layer of the model; the model.json is corrupt.`);
    edges.set(name, refs.map(([r]) => r));
  }
  for (const key of ['input_layers', 'output_layers'] as const) {
    for (const [ref] of references((config as Record<string, unknown>)?.[key])) if (!names.has(ref)) throw new ModelError(`${where}: ${key} names '${ref}', which is not a layer of the model; the model.json is corrupt.`);
  }
  // Depth-first search for a cycle, iterative so a deep graph cannot overflow the stack.
  const state = new Map<string, 1 | 2>();
  for (const start of names.keys()) {
    if (state.get(start) === 2) continue;
    const stack: Array<[string, number]> = [[start, 0]];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const next = edges.get(top[0])![top[1]++];
      if (next === undefined) { state.set(top[0], 2); stack.pop(); continue; }
      if (state.get(next) === 1) throw new ModelError(`${where}: layer '${next}' reads its own output through a cycle (${[...stack.map(([n]) => n).slice(stack.findIndex(([n]) => n === next)), next].join(' -> ')}); a model graph must be acyclic.`);
      if (!state.has(next)) { state.set(next, 1); stack.push([next, 0]); }
    }
  }
}

/** Every layer whose config sizes its weights (`units`, `filters`) against the manifest's weights of that layer. */
function checkSizes(where: string, config: LayerJson['config'], weights: readonly tf.io.WeightsManifestEntry[], depth: number): void {
  const layers = (Array.isArray(config) ? config : config?.layers) as LayerJson[] | undefined;
  if (!Array.isArray(layers) || depth > 32) return;
  for (const l of layers) {
    const c = l?.config ?? {};
    if (CONTAINERS.has(String(l.class_name))) { checkSizes(where, c, weights, depth + 1); continue; }
    const name = String(c.name ?? l.name);
    for (const key of ['units', 'filters'] as const) {
      const v = c[key];
      if (v === undefined || v === null) continue;
      if (!(typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 1 << 20)) throw new ModelError(`${where}: layer '${name}' has ${key} ${JSON.stringify(v)}, not a whole number from 1 to ${1 << 20}; the model.json is corrupt.`);
      // The classes whose kernel's last axis is `units`/`filters` (a transposed conv's is not, an
      // RNN's is a multiple); the others' biases still are.
      const kernelToo = SIZED_KERNELS.has(String(l.class_name));
      const own = weights.filter((w) => kernelToo || w.name.endsWith('/bias')).filter((w) => w.name === `${name}/kernel` || w.name.endsWith(`/${name}/kernel`) || w.name === `${name}/bias` || w.name.endsWith(`/${name}/bias`));
      if (own.length === 0 || !SIZED_BIASES.has(String(l.class_name))) continue; // other names or layouts: tfjs checks them after building
      const wrong = own.find((w) => w.shape[w.shape.length - 1] !== v);
      if (wrong) throw new ModelError(`${where}: layer '${name}' has ${key} ${v} but its weight ${wrong.name} has shape [${wrong.shape.join(', ')}]; the model.json and its weights do not belong together.`);
    }
  }
}

/**
 * Checks a model.json's topology and weight specs before anything is allocated (see the module
 * comment). `where` starts each message ("Error loading model DIR").
 */
export function checkModelJson(where: string, topology: unknown, weights: readonly tf.io.WeightsManifestEntry[]): void {
  for (const w of weights) {
    if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0 && d <= 2 ** 31)) {
      throw new ModelError(`${where}: weight ${JSON.stringify(w?.name)} has shape ${JSON.stringify(w?.shape)}, not a list of whole numbers; the model.json is corrupt.`);
    }
  }
  if (!topology || typeof topology !== 'object') return;
  const model = modelConfig(topology as Record<string, unknown>);
  if (!model) return; // a GraphModel: the compiler checks its graph
  checkLayers(where, model.className, model.config, 0);
  checkSizes(where, model.config, weights, 0);
}
