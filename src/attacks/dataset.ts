/**
 * Attacks over a whole Dataset in streamed batches. Every random draw of an example (its random
 * start, its random target) is seeded from the run's seed and the example's id, so an example's
 * result does not depend on the batch it lands in: a resumed run, a shard, or an evaluator that
 * attacks only the points still robust all get the same per-example results.
 */
import * as tf from '@tensorflow/tfjs';
import { batches, checkShapes, size, type Dataset } from '../data/dataset.js';
import { checkedPredictions, type Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, checkKnownOptions, show } from '../util/errors.js';
import { deriveSeed, seedFor } from '../util/random.js';
import type { AttackPool } from './pool.js';
import type { Attack, AttackResult, GradientAttackOptions } from './gradient_descent.js';
import { ATTACK_NAMES, ATTACKS, type AttackName } from './registry.js';
import { fixedTargets, leastLikelyTargets, randomTargets, targeted } from './targets.js';

export type TargetMode = 'random' | 'least-likely' | number;

export interface DatasetAttackOptions {
  batchSize?: number;
  /** Index of the first example to attack (to resume). Must be a multiple of batchSize. */
  from?: number;
  /** Targeted attack: random (seeded) targets, least-likely targets, or one class for all. */
  target?: TargetMode;
  /** Called after each batch with the number of examples done. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Worker threads to run the batches on (AttackPool.create(model)); the results are the same as
   * without. The attack must be one of the registry's, best given by name.
   */
  pool?: AttackPool;
}

export interface DatasetAttackBatch {
  start: number;
  end: number;
  x: tf.Tensor4D;
  labels: Int32Array;
  targets?: Int32Array;
  cleanPredictions: Int32Array;
  result: AttackResult;
}

type AnyAttack = Attack<GradientAttackOptions>;

/**
 * Yields one attacked batch at a time; the caller disposes `x` and `result.adversarial`.
 */
export async function* attackDataset<O extends Partial<GradientAttackOptions>>(attack: AttackName | Attack<O>, model: Classifier, ds: Dataset, options: O & { eps: number }, run: DatasetAttackOptions = {}): AsyncGenerator<DatasetAttackBatch> {
  checkKnownOptions('attackDataset', run, ['batchSize', 'from', 'target', 'onProgress', 'pool']);
  const batchSize = checkFiniteNumber('attackDataset', 'batchSize', run.batchSize ?? 128, { integer: true, min: 1 });
  const from = checkFiniteNumber('attackDataset', 'from', run.from ?? 0, { integer: true, min: 0 });
  check(from % batchSize === 0, 'attackDataset', () => `from (${from}) must be a multiple of batchSize (${batchSize}) so batches line up with an uninterrupted run.`);
  checkShapes('attackDataset', model.inputShape, ds);
  const labelsMax = ds.labels.reduce((a, b) => Math.max(a, b), 0);
  check(labelsMax < model.numClasses, 'attackDataset', () => `the data has label ${labelsMax} but the model has ${model.numClasses} classes (0..${model.numClasses - 1}).`);
  const seedOpt = (options as GradientAttackOptions).seed ?? 0;
  check(typeof seedOpt === 'number', 'attackDataset', () => 'seed must be one number here; per-example seeds are derived from it and the example ids.');
  const seed = seedOpt as number;
  const total = size(ds);
  const pool = run.pool;
  check(typeof attack !== 'string' || ATTACK_NAMES.includes(attack), 'attackDataset', () => `unknown attack ${show(attack)}; use one of ${ATTACK_NAMES.join(', ')}, or pass an attack function.`);
  // A pool runs attacks by name; a function is run there only when it is the registry's own.
  const poolName = !pool ? undefined : typeof attack === 'string' ? attack : ATTACK_NAMES.find((n) => (ATTACKS[n] as unknown) === (attack as unknown));
  check(!pool || poolName !== undefined, 'attackDataset', () => `a worker pool runs only the registry attacks, by name (${ATTACK_NAMES.join(', ')}); this function is not one of them.`);
  const attackFn = (typeof attack === 'string' ? ATTACKS[attack] : attack) as unknown as AnyAttack;
  pool?.checkRuns('attackDataset', model);

  // With a pool the workers compute the clean predictions too: a forward pass here would take a
  // core from them.
  const prepare = async (b: { x: tf.Tensor4D; y: tf.Tensor1D; start: number; end: number }) => {
    const labels = ds.labels.slice(b.start, b.end);
    let targets: Int32Array | undefined;
    if (run.target !== undefined) {
      if (run.target === 'random') targets = Int32Array.from(labels, (l, k) => randomTargets([l], model.numClasses, deriveSeed(seed, ds.ids[b.start + k]!, 7))[0]!);
      else if (run.target === 'least-likely') targets = leastLikelyTargets(model, b.x);
      else targets = fixedTargets(labels.length, run.target, model.numClasses);
    }
    let cleanPredictions: Int32Array = new Int32Array(0); // from the workers' replies with a pool
    try {
      if (!pool) cleanPredictions = await checkedPredictions('attackDataset', model, b.x);
    } catch (err) {
      tf.dispose([b.x, b.y]);
      throw err;
    }
    b.y.dispose();
    const seeds = Int32Array.from({ length: b.end - b.start }, (_, k) => seedFor(seed, ds.ids[b.start + k]!));
    return { start: b.start, end: b.end, x: b.x, labels, targets, cleanPredictions, seeds };
  };
  type Prepared = Awaited<ReturnType<typeof prepare>>;
  const attackHere = async (p: Prepared): Promise<AttackResult> => {
    const opts = { ...(options as GradientAttackOptions), seed: p.seeds, ...(p.targets ? { goal: targeted(p.targets) } : {}) };
    return attackFn(model, p.x, p.labels, opts);
  };
  const attackOnPool = async (p: Prepared): Promise<{ result: AttackResult; cleanPredictions: Int32Array }> => {
    const images = Float32Array.from(await p.x.data());
    const reply = await pool!.run({ attack: poolName!, options: { ...(options as object) }, images, shape: p.x.shape as [number, number, number, number], labels: p.labels, seeds: p.seeds, targets: p.targets, clean: true });
    const result: AttackResult = {
      adversarial: tf.tensor4d(reply.adversarial!, p.x.shape as [number, number, number, number]),
      success: reply.success!, predictions: reply.predictions!, norms: reply.norms!,
      steps: reply.steps!, restarts: reply.restarts!, loss: reply.loss!,
      ...(reply.minimumNorm ? { minimumNorm: reply.minimumNorm } : {}),
    };
    return { result, cleanPredictions: reply.cleanPredictions! };
  };

  if (!pool) {
    for (const b of batches(ds, batchSize, { from })) {
      const p = await prepare(b);
      let result: AttackResult;
      try {
        result = await attackHere(p);
      } catch (err) {
        p.x.dispose();
        throw err;
      }
      run.onProgress?.(p.end, total);
      yield { start: p.start, end: p.end, x: p.x, labels: p.labels, targets: p.targets, cleanPredictions: p.cleanPredictions, result };
    }
    return;
  }
  // With a pool: keep every worker busy, yield in order.
  const inFlight: Array<{ p: Prepared; result: Promise<{ result: AttackResult; cleanPredictions: Int32Array }> }> = [];
  const it = batches(ds, batchSize, { from });
  const fill = async () => {
    while (inFlight.length < pool.size * 2) {
      const next = it.next();
      if (next.done) return;
      const p = await prepare(next.value);
      const result = attackOnPool(p);
      result.catch(() => undefined); // surfaced when awaited in order
      inFlight.push({ p, result });
    }
  };
  try {
    await fill();
    while (inFlight.length) {
      const { p, result } = inFlight.shift()!;
      const r = await result;
      await fill();
      run.onProgress?.(p.end, total);
      yield { start: p.start, end: p.end, x: p.x, labels: p.labels, targets: p.targets, cleanPredictions: r.cleanPredictions, result: r.result };
    }
  } finally {
    for (const { p, result } of inFlight) {
      p.x.dispose();
      void result.then((r) => r.result.adversarial.dispose(), () => undefined);
    }
  }
}

/**
 * The class the model predicts for every example of `ds` (argmax of the logits), batch by batch,
 * refusing misshaped or non-finite logits; on the pool's workers when `pool` is given (the same
 * classes, each core busy), which must have been built from `model`.
 */
export async function predictDataset(model: Classifier, ds: Dataset, run: { batchSize?: number; pool?: AttackPool; fn?: string } = {}): Promise<Int32Array> {
  const fn = run.fn ?? 'predictDataset';
  const batchSize = checkFiniteNumber(fn, 'batchSize', run.batchSize ?? 128, { integer: true, min: 1 });
  checkShapes(fn, model.inputShape, ds);
  const out = new Int32Array(size(ds));
  const pool = run.pool;
  if (!pool) {
    for (const b of batches(ds, batchSize)) {
      try {
        out.set(await checkedPredictions(fn, model, b.x), b.start);
      } finally {
        tf.dispose([b.x, b.y]);
      }
    }
    return out;
  }
  pool.checkRuns(fn, model);
  // Two batches per worker in flight: every core busy, the data copied a few batches at a time.
  const inFlight: Array<Promise<void>> = [];
  try {
    for (const b of batches(ds, batchSize)) {
      const images = (await b.x.data()) as Float32Array;
      const shape = b.x.shape as [number, number, number, number];
      tf.dispose([b.x, b.y]);
      const p = pool.predict(images, shape).then((pred) => out.set(pred, b.start));
      p.catch(() => undefined); // surfaced below, in order
      inFlight.push(p);
      if (inFlight.length >= pool.size * 2) await inFlight.shift();
    }
    while (inFlight.length) await inFlight.shift();
  } finally {
    await Promise.allSettled(inFlight);
  }
  return out;
}
