/**
 * One training step as a sum of shard gradients (data parallelism).
 *
 * A batch of n examples is cut into a fixed number of contiguous shards; each shard's loss is
 * its examples' summed loss divided by n, so the shards' gradients add up to the batch's mean
 * gradient. The shards are summed in shard order whether they were computed in this thread or
 * on a TrainPool's workers (each worker computes the same shard bit for bit: same backend, same
 * weights, same per-shard seeds), so a run gives the same weights with any number of workers.
 *
 * Models with non-trainable state (BatchNormalization's moving statistics) normalise each shard
 * by its own batch statistics, as data-parallel PyTorch does without synchronised batch norm
 * ("ghost batch norm"). Every shard starts from the same state; the new state is the old one
 * plus the shard-size-weighted mean of the shards' changes (for equal shards the moving mean
 * moves by the whole batch's mean), merged in shard order in this thread or on the pool alike.
 */
import * as tf from '@tensorflow/tfjs';
import { adversarialBatch, klDivergence, trainingView, type AdversarialTraining } from './adversarial_training.js';
import type { Classifier } from '../models/classifier.js';
import type { TrainPool } from './train_pool.js';
import { deriveSeed, seedFor } from '../util/random.js';
import { forward } from '../models/compiled.js';
import { readInto } from '../backend/index.js';

/** What a shard needs besides its examples and the current weights. */
export interface ShardSpec {
  /** Examples in the whole batch (the loss divisor). */
  batchSize: number;
  numClasses: number;
  adversarial?: Required<AdversarialTraining>;
  /** eps in force for this batch (adversarial training). */
  eps?: number;
  /** Seed of this shard's adversarial examples. */
  advSeed?: number;
  /** Gaussian-noise augmentation: standard deviation and this shard's seed. */
  noise?: number;
  noiseSeed?: number;
}

export interface ShardResult {
  /** Gradients of the shard's loss, in the order of the trainable variables. */
  grads: tf.Tensor[];
  /** The non-trainable state after the shard (flattened), when the batch has several shards. */
  state?: Float32Array;
  /** The shard's part of the batch's mean loss. */
  loss: number;
  /** Correctly classified training inputs (adversarial ones in adversarial training). */
  hits: number;
}

/** [start, end) of each non-empty shard of a batch of n. */
export function shardRanges(n: number, shards: number): Array<[number, number]> {
  const per = Math.ceil(n / shards);
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += per) out.push([s, Math.min(n, s + per)]);
  return out;
}

/** The gradients of one shard of a batch (see the module comment). The caller disposes grads. */
export async function shardGradients(model: tf.LayersModel, vars: tf.Variable[], view: Classifier | undefined, x: tf.Tensor4D, y: tf.Tensor1D, spec: ShardSpec): Promise<ShardResult> {
  let xIn = x;
  if (spec.noise && spec.noise > 0) {
    xIn = tf.tidy(() => tf.add(x, tf.randomNormal(x.shape, 0, spec.noise!, 'float32', ((spec.noiseSeed ?? 0) % 2147483646) + 1)) as tf.Tensor4D);
  }
  const adv = spec.adversarial;
  if (adv && view) xIn = await adversarialBatch(view, x, Int32Array.from(await y.data()), adv, spec.eps ?? adv.eps, spec.advSeed ?? 0);
  let hits: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const oneHot = tf.oneHot(y, spec.numClasses);
    const sumCe = (logits: tf.Tensor2D) => tf.losses.softmaxCrossEntropy(oneHot, logits, undefined, 0, tf.Reduction.SUM);
    let total: tf.Scalar;
    if (adv?.method === 'trades') {
      // TRADES: CE on the clean inputs plus beta·KL(p(x) ‖ p(x_adv)).
      const clean = forward(model, x, true) as tf.Tensor2D;
      const advLogits = forward(model, xIn, true) as tf.Tensor2D;
      hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(advLogits, 1), y), 'float32')) as tf.Scalar);
      total = tf.add(sumCe(clean), tf.mul(adv.beta, tf.sum(klDivergence(tf.softmax(clean) as tf.Tensor2D, advLogits)))) as tf.Scalar;
    } else {
      const logits = forward(model, xIn, true) as tf.Tensor2D;
      hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'float32')) as tf.Scalar);
      total = sumCe(logits) as tf.Scalar;
    }
    return tf.div(total, spec.batchSize) as tf.Scalar;
  }, vars);
  const [l, h] = await Promise.all([value.data(), hits!.data()]);
  tf.dispose([value, hits!]);
  if (xIn !== x) xIn.dispose();
  return { grads: vars.map((v) => grads[v.name]!), loss: l[0]!, hits: h[0]! };
}

export interface TrainingStepOptions {
  numClasses: number;
  /** Parts the batch's gradient is computed in (default 1); see the module comment. */
  shards?: number;
  /** Worker threads for the shards (TrainPool.create with this model). */
  pool?: TrainPool;
  adversarial?: Required<AdversarialTraining>;
  /** eps in force (adversarial training); default adversarial.eps. */
  eps?: number;
  /** Gaussian-noise augmentation. */
  noise?: number;
  /** Seed of this step's random draws (each shard derives its own). */
  seed?: number;
}

/** The tensors' values end to end, in the order given (how weights and gradients cross threads). */
export async function flatValues(tensors: readonly tf.Tensor[]): Promise<Float32Array> {
  return flatValuesInto(tensors, new Float32Array(tensors.reduce((a, t) => a + t.size, 0)));
}

/** flatValues into `out` (its length the tensors' total size), without a copy per tensor on wasm. */
export function flatValuesInto(tensors: readonly tf.Tensor[], out: Float32Array): Float32Array {
  let at = 0;
  for (const t of tensors) {
    readInto(t, out, at);
    at += t.size;
  }
  return out;
}

/** New tensors shaped like `like`, cut in order from `flat` (flatValues undone). */
export function unflatten(flat: Float32Array, like: readonly tf.Tensor[]): tf.Tensor[] {
  let at = 0;
  return like.map((t) => {
    const out = tf.tensor(flat.subarray(at, at + t.size), t.shape);
    at += t.size;
    return out;
  });
}

/** The trainable variables of a model, in trainableWeights order. */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
}

/** The non-trainable variables (batch-norm moving statistics, frozen layers), in order. */
export function stateVariables(model: tf.LayersModel): tf.Variable[] {
  return model.nonTrainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
}

/** Assigns flattened values (flatValues' order) to variables. */
export function assignFlat(vars: readonly tf.Variable[], flat: Float32Array): void {
  const values = unflatten(flat, vars);
  vars.forEach((v, i) => v.assign(values[i]!));
  tf.dispose(values);
}

/**
 * The state after several shards that each started from `base`: base + Σ (n_s/n)·(state_s − base),
 * in f64, rounded once. A value no shard changed stays bit-identical (a frozen layer's weights).
 */
export function mergeShardStates(base: Float32Array, states: readonly Float32Array[], sizes: readonly number[]): Float32Array {
  if (states.length === 1) return states[0]!;
  const n = sizes.reduce((a, b) => a + b, 0);
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    let delta = 0;
    for (let s = 0; s < states.length; s++) delta += (sizes[s]! / n) * (states[s]![i]! - base[i]!);
    out[i] = delta === 0 ? base[i]! : base[i]! + delta;
  }
  return out;
}

/**
 * One optimizer step on a batch: the sum of its shard gradients (in this thread, or on the
 * pool), applied by `optimizer`. Returns the batch's mean loss and its correct predictions.
 */
export async function trainingStep(model: tf.LayersModel, optimizer: tf.Optimizer, x: tf.Tensor4D, y: tf.Tensor1D, options: TrainingStepOptions): Promise<{ loss: number; hits: number }> {
  const n = x.shape[0];
  const seed = options.seed ?? 0;
  const vars = trainableVariables(model);
  const specs = shardRanges(n, options.shards ?? 1).map(([s0, s1], s): [number, number, ShardSpec] => [s0, s1, {
    batchSize: n, numClasses: options.numClasses, noise: options.noise, noiseSeed: deriveSeed(seed, 5, s),
    adversarial: options.adversarial, eps: options.eps, advSeed: seedFor(seed, 3, s),
  }]);
  const stateVars = stateVariables(model);
  // One shard updates the model's state in place; several start from the same state (merged below).
  const base = stateVars.length > 0 && (specs.length > 1 || options.pool) ? await flatValues(stateVars) : undefined;
  let summed: tf.Tensor[];
  let parts: Array<{ loss: number; hits: number; state?: Float32Array }>;
  if (options.pool) {
    const r = await poolShards(options.pool, vars, x, y, specs, base);
    summed = r.summed;
    parts = r.parts;
  } else {
    const local = await localShards(model, vars, options.adversarial ? trainingView(model, [x.shape[1], x.shape[2], x.shape[3]], options.numClasses) : undefined, x, y, specs, stateVars, base);
    // Shards summed in shard order (float32 additions, as poolShards does on the host).
    summed = vars.map((_, i) => local.slice(1).reduce((acc, p) => {
      const next = tf.add(acc, p.grads[i]!);
      if (acc !== local[0]!.grads[i]) acc.dispose();
      return next;
    }, local[0]!.grads[i]!));
    tf.dispose(local.flatMap((p) => p.grads).filter((g) => !summed.includes(g)));
    parts = local;
  }
  if (base) assignFlat(stateVars, mergeShardStates(base, parts.map((p) => p.state!), specs.map(([s0, s1]) => s1 - s0)));
  optimizer.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: summed[i]! })));
  tf.dispose(summed);
  return { loss: parts.reduce((a, p) => a + p.loss, 0), hits: parts.reduce((a, p) => a + p.hits, 0) };
}

/** The shards of a batch, one after another in this thread. */
async function localShards(model: tf.LayersModel, vars: tf.Variable[], view: Classifier | undefined, x: tf.Tensor4D, y: tf.Tensor1D, specs: Array<[number, number, ShardSpec]>,
  stateVars: tf.Variable[], base: Float32Array | undefined): Promise<ShardResult[]> {
  const out: ShardResult[] = [];
  for (const [s0, s1, spec] of specs) {
    const xs = specs.length === 1 ? x : tf.slice(x, [s0], [s1 - s0]);
    const ys = specs.length === 1 ? y : tf.slice(y, [s0], [s1 - s0]);
    if (base && out.length > 0) assignFlat(stateVars, base);
    const r = await shardGradients(model, vars, view, xs, ys, spec);
    out.push(base ? { ...r, state: await flatValues(stateVars) } : r);
    if (xs !== x) tf.dispose([xs, ys]);
  }
  return out;
}

/** The shards of a batch on the pool's workers, at the current weights. */
async function poolShards(pool: TrainPool, vars: tf.Variable[], x: tf.Tensor4D, y: tf.Tensor1D, specs: Array<[number, number, ShardSpec]>, state: Float32Array | undefined): Promise<{ summed: tf.Tensor[]; parts: Array<{ loss: number; hits: number; state?: Float32Array }> }> {
  const [xs, ys] = await Promise.all([x.data() as Promise<Float32Array>, y.data() as Promise<Int32Array>]);
  const replies = await pool.shards(vars, state, xs, x.shape, ys, specs);
  // Shards summed in shard order; a Float32Array store rounds each sum to float32 exactly as a
  // float32 addition does, so this equals localShards' tf.add chain bit for bit.
  const acc = replies[0]!.grads;
  for (const r of replies.slice(1)) for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + r.grads[i]!;
  return { summed: unflatten(acc, vars), parts: replies };
}
