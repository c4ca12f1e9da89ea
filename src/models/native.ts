/**
 * A compiled classifier on onnxruntime: its graph written as ONNX (compiler/emit_onnx.ts), one
 * session per objective (and one for the logits) built on first use and kept, run
 * asynchronously. The attack loop asks `gradient` for the logits and the input gradient of an
 * objective in one run; the rest of the attack (steps, projections) stays on the tensor backend.
 *
 * It answers undefined, and the caller runs the tfjs path, when onnxruntime is not the backend,
 * when the graph holds a node only tfjs runs (`unavailable` says which), or when the model's
 * weights changed after its sessions were built (training updates them every step: training runs
 * on the tensor backend).
 */
import * as tf from '@tensorflow/tfjs';
import { backendStatus } from '../backend/index.js';
import { createSession, ortTensor, type OrtSession, type OrtTensor } from '../backend/onnxruntime.js';
import { emitOnnx, NotEmittable, type EmitOptions } from './compiler/emit_onnx.js';
import type { ObjectiveKind } from './compiler/emit_objective.js';
import type { Graph, Param } from './compiler/ir.js';

export type { ObjectiveKind } from './compiler/emit_objective.js';

/** An attack objective the native path computes in-graph (attacks/losses.ts's, FAB's gap, TRADES' KL). */
export interface ObjectiveSpec {
  kind: ObjectiveKind;
  /** True labels, or targets for targeted kinds (gap: class a of z_a − z_b). */
  labels?: Int32Array;
  /** dlr-targeted: the true labels; gap: class b. */
  other?: Int32Array;
  /** kl: the reference probabilities [N, classes]. */
  reference?: tf.Tensor2D;
}

export interface NativeModel {
  /** Logits, or undefined where the native path does not run. */
  logits(x: tf.Tensor4D): Promise<tf.Tensor2D | undefined>;
  /** Logits and ∂(Σ objective)/∂x in one run, or undefined where the native path does not run. */
  gradient(x: tf.Tensor4D, objective: ObjectiveSpec): Promise<{ logits: tf.Tensor2D; grad: tf.Tensor4D } | undefined>;
  /** Why this model cannot run natively (undefined while it can). */
  readonly unavailable: string | undefined;
  /** Releases the sessions. */
  release(): Promise<void>;
}

function params(g: Graph): Param[] {
  const out: Param[] = [];
  for (const { op } of g.nodes) {
    const add = (...ps: Array<Param | undefined>) => { for (const p of ps) if (p) out.push(p); };
    const bn = (b?: { gamma?: Param; beta?: Param; mean: Param; variance: Param }) => { if (b) add(b.gamma, b.beta, b.mean, b.variance); };
    if (op.kind === 'conv') { add(op.filter, op.bias); bn(op.bn); }
    if (op.kind === 'dense') { add(op.kernel, op.bias); bn(op.bn); }
    if (op.kind === 'batchnorm') bn(op.bn);
    if (op.kind === 'act') add(op.slopes);
    if (op.kind === 'const-binary') add(op.value);
  }
  return out;
}

const int64 = new WeakMap<Int32Array, BigInt64Array>();
function asInt64(a: Int32Array): BigInt64Array {
  let v = int64.get(a);
  if (!v) { v = BigInt64Array.from(a, (n) => BigInt(n)); int64.set(a, v); }
  return v;
}

/** The native runner of a compiled graph (see the module comment). */
export function nativeModel(g: Graph, inputShape: readonly number[], emit: Omit<EmitOptions, 'objective'>): NativeModel {
  const weights = params(g);
  let ids: unknown[] | undefined;
  let unavailable: string | undefined;
  const sessions = new Map<string, Promise<OrtSession>>();
  const usable = (): boolean => {
    if (unavailable || backendStatus()?.name !== 'onnxruntime') return false;
    const now = weights.map((p) => (p.read() as unknown as { dataId: unknown }).dataId);
    if (!ids) ids = now;
    else if (now.some((id, i) => id !== ids![i])) {
      unavailable = 'its weights changed after its onnxruntime sessions were built (a model in training runs on the tensor backend)';
      return false;
    }
    return true;
  };
  const session = (kind: ObjectiveKind | 'logits'): Promise<OrtSession> | undefined => {
    let s = sessions.get(kind);
    if (!s) {
      let bytes: Uint8Array;
      try {
        bytes = emitOnnx(g, inputShape, { ...emit, ...(kind === 'logits' ? {} : { objective: kind }) });
      } catch (err) {
        if (!(err instanceof NotEmittable)) throw err;
        unavailable = `${err.message}; the model runs on the tensor backend`;
        return undefined;
      }
      s = createSession(bytes);
      sessions.set(kind, s);
    }
    return s;
  };
  const images = async (x: tf.Tensor4D): Promise<OrtTensor> => ortTensor(await x.data() as Float32Array, x.shape);
  const read = (t: OrtTensor): Float32Array => {
    const v = t.data as Float32Array;
    t.dispose?.();
    return v;
  };
  return {
    get unavailable() { return unavailable; },
    async logits(x) {
      if (!usable()) return undefined;
      const s = session('logits');
      if (!s) return undefined;
      const sess = await s;
      const z = (await sess.run({ x: await images(x) }))[sess.outputNames[0]!]!;
      const k = z.dims[1] as number;
      return tf.tensor2d(read(z), [x.shape[0], k]);
    },
    async gradient(x, objective) {
      if (!usable()) return undefined;
      const s = session(objective.kind);
      if (!s) return undefined;
      const sess = await s;
      const n = x.shape[0];
      const feeds: Record<string, OrtTensor> = { x: await images(x) };
      if (objective.labels) feeds.labels = ortTensor(asInt64(objective.labels), [n]);
      if (objective.other) feeds.other = ortTensor(asInt64(objective.other), [n]);
      if (objective.reference) feeds.reference = ortTensor(await objective.reference.data() as Float32Array, objective.reference.shape);
      const out = await sess.run(feeds);
      const [zName, gName] = sess.outputNames as [string, string];
      const k = out[zName]!.dims[1] as number;
      return { logits: tf.tensor2d(read(out[zName]!), [n, k]), grad: tf.tensor4d(read(out[gName]!), x.shape) };
    },
    async release() {
      const all = [...sessions.values()];
      sessions.clear();
      for (const s of all) await (await s).release();
    },
  };
}
