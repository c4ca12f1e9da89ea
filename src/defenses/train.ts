/**
 * Natural training: Adam on softmax cross-entropy of the logits, seeded batch order, per-epoch
 * validation, and checkpoints that let an interrupted run resume where it stopped (same
 * weights and optimizer state, same batch order: the result is the same as an uninterrupted run).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attackDataset } from '../attacks/dataset.js';
import { pgd } from '../attacks/pgd.js';
import { batches, size, take, type Dataset } from '../data/dataset.js';
import { rampedEps, trainingView, validateAdversarial, type AdversarialTraining } from './adversarial_training.js';
import type { Classifier } from '../models/classifier.js';
import { AdvkitError, checkFiniteNumber, InvalidArgumentError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { deriveSeed, Rng } from '../util/random.js';
import { loadLayersModel, saveLayersModel } from '../models/io.js';
import { forward } from '../models/compiled.js';
import type { TrainPool } from './train_pool.js';
import { trainingStep } from './train_step.js';

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  valAccuracy?: number;
  /** Held-out accuracy under PGD (adversarial training only). */
  valRobustAccuracy?: number;
  /** eps used for training in this epoch's last batch (adversarial training only). */
  eps?: number;
  seconds: number;
}

export interface BatchProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
}

export interface TrainOptions {
  epochs: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  /** Held-out data scored after every epoch. */
  validation?: Dataset;
  /** Directory for per-epoch checkpoints; an existing one with the same config is resumed. */
  checkpointDir?: string;
  /** Identifies the run; a checkpoint made with another config is not resumed. */
  config?: Record<string, unknown>;
  /**
   * Learning-rate schedule: 'cosine' (default) decays from learningRate to 0 over the run
   * (Loshchilov & Hutter 2017, arXiv:1608.03983, without restarts); 'cyclic' rises linearly
   * to learningRate at 40% of the run and falls to 0 (one cycle, as fast adversarial training
   * uses); 'constant' keeps it.
   */
  schedule?: 'cosine' | 'constant' | 'cyclic';
  /**
   * Adversarial training (see defenses/adversarial_training.ts): every batch is replaced by
   * adversarial examples against the current weights. Adds a PGD check on the validation data
   * each epoch; with fgsm-rs, a collapse of that check (catastrophic overfitting) stops training
   * and restores the best weights.
   */
  adversarial?: AdversarialTraining;
  /** Validation examples and PGD steps of the per-epoch robustness check. Default 500 and 10. */
  robustCheck?: { examples?: number; steps?: number };
  /** Random translations of up to this many pixels (zero fill), seeded. Default 2; 0 turns it off. */
  shift?: number;
  /**
   * Gaussian-noise augmentation of standard deviation `noise` (unclipped), for models to be
   * used with randomized smoothing (Cohen et al. 2019 train at the sigma they certify with).
   */
  noise?: number;
  /**
   * Each batch's gradient is the sum of this many shard gradients, summed in order (default 2).
   * Shards run in parallel on `pool`; the weights do not depend on the number of workers. Models
   * with non-trainable state (BatchNormalization) default to one shard; with more, each shard
   * normalises by its own batch statistics (ghost batch norm, as data-parallel PyTorch without
   * synchronised batch norm) and the moving statistics are merged (train_step.ts).
   */
  shards?: number;
  /** Worker threads for the shards (TrainPool.create on this model). */
  pool?: TrainPool;
  onBatch?: (p: BatchProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
}

export const TRAIN_DEFAULTS = Object.freeze({ batchSize: 32, learningRate: 2e-3, seed: 0, schedule: 'cosine' as const, shift: 2, shards: 2 });

export interface TrainResult {
  history: EpochRecord[];
  /** Epoch after which fast adversarial training stopped on catastrophic overfitting. */
  stoppedEarly?: number;
  /** Epochs already done when this call started (0 for a fresh run). */
  resumedFrom: number;
  model: tf.LayersModel;
}

/** Accuracy of a logits function on a data set, in batches. */
export async function accuracy(logits: (x: tf.Tensor4D) => tf.Tensor2D, ds: Dataset, batchSize = 256): Promise<number> {
  let correct = 0;
  for (const b of batches(ds, batchSize)) {
    const c = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits(b.x), 1), b.y), 'int32')));
    correct += (await c.data())[0]!;
    tf.dispose([c, b.x, b.y]);
  }
  return size(ds) === 0 ? 0 : correct / size(ds);
}

interface CheckpointState {
  epochsDone: number;
  history: EpochRecord[];
  config: Record<string, unknown>;
  dir: string;
}

const POINTER = 'checkpoint.json';

async function saveCheckpoint(root: string, model: tf.LayersModel, optimizer: tf.Optimizer, state: Omit<CheckpointState, 'dir'>): Promise<void> {
  const name = `epoch-${state.epochsDone}`;
  const dir = path.join(root, name);
  await fsp.rm(dir, { recursive: true, force: true });
  await saveLayersModel(model, dir);
  const named = await optimizer.getWeights();
  const { data, specs } = await tf.io.encodeWeights(named);
  await writeFileAtomic(path.join(dir, 'optimizer.bin'), new Uint8Array(data));
  await writeFileAtomic(path.join(dir, 'optimizer.json'), JSON.stringify(specs));
  // The pointer is written last: a checkpoint exists only once it is complete.
  await writeFileAtomic(path.join(root, POINTER), JSON.stringify({ ...state, dir: name }, null, 2));
  for (const entry of await fsp.readdir(root)) {
    if (entry.startsWith('epoch-') && entry !== name) await fsp.rm(path.join(root, entry), { recursive: true, force: true });
  }
}

async function loadCheckpoint(root: string): Promise<CheckpointState | undefined> {
  const file = path.join(root, POINTER);
  if (!(await exists(file))) return undefined;
  return JSON.parse(await fsp.readFile(file, 'utf8')) as CheckpointState;
}

/** Removes the checkpoints of a finished run. */
export async function clearCheckpoints(root: string): Promise<void> {
  await fsp.rm(root, { recursive: true, force: true });
}

function sameConfig(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Trains `model` (which outputs logits) on `data`. With `checkpointDir`, saves a checkpoint
 * after every epoch and resumes from one made with the same config; the returned model is
 * the trained one (a new object when resumed).
 */
export async function trainClassifier(model: tf.LayersModel, data: Dataset, options: TrainOptions): Promise<TrainResult> {
  const fn = 'trainClassifier';
  const epochs = checkFiniteNumber(fn, 'epochs', options.epochs, { integer: true, min: 1 });
  const batchSize = checkFiniteNumber(fn, 'batchSize', options.batchSize ?? TRAIN_DEFAULTS.batchSize, { integer: true, min: 1 });
  const lr = checkFiniteNumber(fn, 'learningRate', options.learningRate ?? TRAIN_DEFAULTS.learningRate, { min: 0, minExclusive: true });
  const seed = checkFiniteNumber(fn, 'seed', options.seed ?? TRAIN_DEFAULTS.seed, { integer: true, min: 0 });
  const schedule = options.schedule ?? TRAIN_DEFAULTS.schedule;
  const shift = checkFiniteNumber(fn, 'shift', options.shift ?? TRAIN_DEFAULTS.shift, { integer: true, min: 0 });
  const noise = checkFiniteNumber(fn, 'noise', options.noise ?? 0, { min: 0 });
  if (noise > 0 && options.adversarial) throw new InvalidArgumentError(`Error in ${fn}: noise augmentation and adversarial training are separate recipes; give one of them.`);
  if (schedule !== 'cosine' && schedule !== 'constant' && schedule !== 'cyclic') throw new InvalidArgumentError(`Error in ${fn}: schedule must be 'cosine', 'cyclic' or 'constant', but got ${JSON.stringify(schedule)}.`);
  const adv = options.adversarial ? validateAdversarial(fn, options.adversarial) : undefined;
  const stateful = model.nonTrainableWeights.length > 0;
  const shards = checkFiniteNumber(fn, 'shards', options.shards ?? (stateful ? 1 : TRAIN_DEFAULTS.shards), { integer: true, min: 1 });
  const pool = options.pool;
  const numClasses = data.classNames.length;
  // The cosine schedule depends on the planned length, so epochs is part of the run's identity.
  const config = { ...(options.config ?? {}), batchSize, learningRate: lr, seed, schedule, shift, noise, shards, adversarial: adv, epochs: schedule !== 'constant' ? epochs : undefined, data: data.name, n: size(data) };
  const optimizer = tf.train.adam(lr);
  let history: EpochRecord[] = [];
  let start = 0;
  if (options.checkpointDir) {
    const state = await loadCheckpoint(options.checkpointDir);
    if (state) {
      if (!sameConfig(state.config, config)) {
        throw new AdvkitError('E_CHECKPOINT_MISMATCH', `Error in ${fn}: ${options.checkpointDir} holds a checkpoint of another run (${JSON.stringify(state.config)}); use another output directory or --force to start over.`, 2);
      }
      const dir = path.join(options.checkpointDir, state.dir);
      const restored = await loadLayersModel(dir);
      model.setWeights(restored.getWeights());
      restored.dispose();
      const specs = JSON.parse(await fsp.readFile(path.join(dir, 'optimizer.json'), 'utf8')) as tf.io.WeightsManifestEntry[];
      const bin = await fsp.readFile(path.join(dir, 'optimizer.bin'));
      const map = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), specs);
      await optimizer.setWeights(specs.map((s) => ({ name: s.name, tensor: map[s.name]! })));
      tf.dispose(Object.values(map));
      history = state.history;
      start = state.epochsDone;
    }
  }
  const view = adv ? trainingView(model, data.shape, numClasses) : undefined;
  let epsNow = adv?.eps ?? 0;
  let best: { robust: number; weights: tf.Tensor[] } | undefined;
  let stoppedEarly: number | undefined;
  const nBatches = Math.ceil(size(data) / batchSize);
  for (let epoch = start; epoch < epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    let k = 0;
    const rng = new Rng(deriveSeed(seed, epoch, 1));
    const transform = shift > 0 ? (images: Float32Array) => randomShift(images, data.shape, shift, rng) : undefined;
    for (const b of batches(data, batchSize, { seed: deriveSeed(seed, epoch), transform })) {
      const t = (epoch * nBatches + k) / (epochs * nBatches);
      if (schedule === 'cosine') (optimizer as unknown as { learningRate: number }).learningRate = 0.5 * lr * (1 + Math.cos(Math.PI * t));
      if (schedule === 'cyclic') (optimizer as unknown as { learningRate: number }).learningRate = t < 0.4 ? (lr * t) / 0.4 : (lr * (1 - t)) / 0.6;
      const n = b.end - b.start;
      if (adv) epsNow = rampedEps(adv, epoch + k / nBatches);
      const step = await trainingStep(model, optimizer, b.x, b.y, {
        numClasses, shards, pool, adversarial: adv, eps: epsNow, noise, seed: deriveSeed(seed, epoch, k),
      });
      lossSum += step.loss * n;
      correct += step.hits;
      seen += n;
      tf.dispose([b.x, b.y]);
      k++;
      options.onBatch?.({ epoch: epoch + 1, epochs, batch: k, batches: nBatches, loss: lossSum / seen, accuracy: correct / seen });
    }
    const record: EpochRecord = { epoch: epoch + 1, loss: lossSum / seen, accuracy: correct / seen, seconds: (performance.now() - t0) / 1000 };
    if (options.validation) record.valAccuracy = await accuracy((x) => forward(model, x, false) as tf.Tensor2D, options.validation);
    if (adv && view && options.validation) {
      record.eps = epsNow;
      record.valRobustAccuracy = await robustAccuracy(view, take(options.validation, options.robustCheck?.examples ?? 500), adv.eps, options.robustCheck?.steps ?? 10, seed);
    }
    history.push(record);
    // Catastrophic overfitting (fast FGSM): the PGD check collapses; keep the best weights and stop.
    if (adv?.method === 'fgsm-rs' && record.valRobustAccuracy !== undefined) {
      if (!best || record.valRobustAccuracy > best.robust) {
        best?.weights.forEach((w) => w.dispose());
        best = { robust: record.valRobustAccuracy, weights: model.getWeights().map((w) => tf.keep(w.clone())) };
      } else if (record.valRobustAccuracy < best.robust - 0.2) {
        model.setWeights(best.weights);
        stoppedEarly = epoch + 1;
        if (options.checkpointDir) await saveCheckpoint(options.checkpointDir, model, optimizer, { epochsDone: epochs, history, config });
        options.onEpoch?.(record);
        break;
      }
    }
    if (options.checkpointDir) await saveCheckpoint(options.checkpointDir, model, optimizer, { epochsDone: epoch + 1, history, config });
    options.onEpoch?.(record);
  }
  optimizer.dispose();
  best?.weights.forEach((w) => w.dispose());
  return { history, resumedFrom: start, model, ...(stoppedEarly ? { stoppedEarly } : {}) };
}

/** Accuracy under PGD (random start, 2.5·eps/steps) on a data set, for the per-epoch check. */
async function robustAccuracy(view: Classifier, ds: Dataset, eps: number, steps: number, seed: number): Promise<number> {
  let robust = 0;
  for await (const b of attackDataset(pgd, view, ds, { eps, steps, seed }, { batchSize: 250 })) {
    robust += b.result.predictions.filter((p, i) => p === b.labels[i]).length;
    tf.dispose([b.x, b.result.adversarial]);
  }
  return size(ds) ? robust / size(ds) : 0;
}

/** Translates each image by a random (dy, dx) in [-max, max]^2, filling with zeros. */
export function randomShift(images: Float32Array, shape: readonly [number, number, number], max: number, rng: Rng): Float32Array {
  const [h, w, c] = shape;
  const per = h * w * c;
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length / per; i++) {
    const dy = rng.int(2 * max + 1) - max;
    const dx = rng.int(2 * max + 1) - max;
    for (let r = Math.max(0, dy); r < Math.min(h, h + dy); r++) {
      const src = i * per + ((r - dy) * w + Math.max(0, -dx)) * c;
      const len = (w - Math.abs(dx)) * c;
      out.set(images.subarray(src, src + len), i * per + (r * w + Math.max(0, dx)) * c);
    }
  }
  return out;
}
