/**
 * What every command shares: option parsers that name the option and the bad value, backend
 * start-up (notes on stderr), and the one error handler (exit 2 for bad usage or input,
 * 1 for a failed run).
 */
import { InvalidArgumentError as CommanderArgError, type Command } from 'commander';
import type * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackend, type BackendStatus } from '../backend/index.js';
import { defaultWorkers } from '../backend/pool.js';
import { AttackPool } from '../attacks/pool.js';
import { TrainPool } from '../defenses/train_pool.js';
import type { BatchProgress, EpochRecord } from '../defenses/train.js';
import { modelDigest, type ModelDigest } from '../models/io.js';
import type { Classifier } from '../models/classifier.js';
import { progressBar } from '../util/progress.js';
import { SHARD_INDEX_VARIABLES } from '../util/shard.js';
import { AdvkitError } from '../util/errors.js';
import { escTerm } from '../util/text.js';

export function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n)) throw new CommanderArgError(`must be an integer, got ${JSON.stringify(value)}.`);
    if (n < min || n > max) throw new CommanderArgError(`must be between ${min} and ${max}, got ${n}.`);
    return n;
  };
}

export function floatOption(min: number, opts: { exclusive?: boolean; max?: number } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new CommanderArgError(`must be a finite number, got ${JSON.stringify(value)}.`);
    if (opts.exclusive ? n <= min : n < min) throw new CommanderArgError(`must be ${opts.exclusive ? '>' : '>='} ${min}, got ${n}.`);
    if (opts.max !== undefined && n > opts.max) throw new CommanderArgError(`must be <= ${opts.max}, got ${n}.`);
    return n;
  };
}

/** A decimal number or a fraction `a/b` (PyTorch users write epsilons as 8/255); NaN when neither. */
export function numberOrFraction(value: string): number {
  const v = value.trim();
  const m = /^([^/]+)\/([^/]+)$/.exec(v);
  if (m) {
    const [a, b] = [m[1]!.trim(), m[2]!.trim()].map((t) => (t === '' ? NaN : Number(t)));
    return b! !== 0 ? a! / b! : NaN;
  }
  return v === '' ? NaN : Number(v);
}

/** An epsilon in pixel units: a number or a fraction (8/255), >= 0. */
export function epsOption(value: string): number {
  const n = numberOrFraction(value);
  if (!Number.isFinite(n) || n < 0) throw new CommanderArgError(`must be a number >= 0 or a fraction such as 8/255, in pixel units, got ${JSON.stringify(value)}.`);
  return n;
}

export function backendOption(value: string): string {
  try {
    return parseBackend(value, '--backend');
  } catch (err) {
    throw new CommanderArgError((err as Error).message.replace(/^Error in --backend: /, ''));
  }
}

/** Adds the options every computing command has. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu (default: $ADVKIT_BACKEND or auto)', backendOption)
    .option('--json', 'print the result as JSON on stdout');
}

/** A line on stderr, with no terminal escape sequence or control character (a folder name may carry some). */
export function log(message: string): void {
  process.stderr.write(`${escTerm(message)}\n`);
}

export async function startBackend(requested?: string): Promise<BackendStatus> {
  const status = await initBackend(requested);
  for (const note of status.notes) log(`advkit: note: ${note}`);
  return status;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Wraps a command action: errors become one line on stderr and an exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportError(err);
    }
  };
}

export function reportError(err: unknown): number {
  if (err instanceof AdvkitError) {
    log(`advkit: ${err.message}`);
    return err.exitCode;
  }
  const e = err as Error;
  log(`advkit: internal error: ${e?.message ?? String(err)}`);
  if (process.env.ADVKIT_DEBUG) log(e?.stack ?? '');
  return 1;
}

/** Adds --workers (default: the number of cores). */
export function withWorkersOption(cmd: Command): Command {
  return cmd.option('--workers <n>', 'worker threads for the attacks (default: one per core); results do not depend on it', intOption(1, 256));
}

/** Adds --shard, --shard-count and --expect-model-sha256 (commands that can run as shards). */
export function withShardOptions(cmd: Command): Command {
  return cmd
    .option('--shard <i/N>', 'run shard i of N (0-based): a deterministic block of the examples; advkit merge joins the shards')
    .option('--shard-count <n>', `number of shards, the index coming from ${SHARD_INDEX_VARIABLES.join(', ')}`, intOption(1, 100_000))
    .option('--expect-model-sha256 <hex>', 'refuse a model whose files (model.json + weights) do not have this SHA-256', sha256Option);
}

function sha256Option(value: string): string {
  const v = value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(v)) throw new CommanderArgError(`must be 64 hex digits (a SHA-256), got ${JSON.stringify(value)}.`);
  return v;
}

/** The model files' digest; refuses (exit 2) a model other than the expected one. */
export async function checkedModelDigest(model: string, expected: string | undefined): Promise<ModelDigest> {
  const digest = await modelDigest(model);
  if (expected !== undefined && digest.sha256 !== expected) {
    throw new AdvkitError('E_MODEL_DIGEST', `Error in --expect-model-sha256: the model in ${model} has SHA-256 ${digest.sha256}, not the expected ${expected}; refusing to run on a model the pipeline did not approve.`, 2);
  }
  return digest;
}

/** --workers, at most one per core: more threads only contend (a warning says so). */
export function cappedWorkers(workers: number | undefined): number {
  const cores = defaultWorkers();
  if (workers !== undefined && workers > cores) log(`advkit: warning: --workers ${workers} is more than the ${cores} cores here; using ${cores}`);
  return Math.min(workers ?? cores, cores);
}

/**
 * Starts a worker pool when it can help: more than one worker and more than one batch of work.
 * Its workers build `from` (a model directory, or a classifier with a source, such as a defended
 * one); a classifier that cannot be described runs in this thread. The caller closes it.
 */
export async function startPool(from: string | Classifier, workers: number | undefined, examples: number, batchSize: number, backend: string): Promise<AttackPool | undefined> {
  const n = Math.min(cappedWorkers(workers), Math.ceil(examples / batchSize));
  if (n <= 1) return undefined;
  if (typeof from !== 'string' && !from.source) {
    log('advkit: this classifier cannot be rebuilt in worker threads; attacking in this thread');
    return undefined;
  }
  const pool = await AttackPool.create(from, { workers: n, backend });
  log(`advkit: attacking on ${n} worker threads`);
  return pool;
}

/**
 * The classifier to attack with while `onPass` hears of each forward pass of the model (for a
 * progress bar): the pool's workers report theirs; without a pool, the classifier's own calls are
 * counted. Results are unchanged.
 */
export function countingForwardPasses(model: Classifier, pool: AttackPool | undefined, onPass: (n: number) => void): Classifier {
  if (pool) {
    pool.onWorkerProgress = onPass;
    return model;
  }
  return { ...model, logits: (x) => { onPass(1); return model.logits(x); } };
}

/**
 * Starts a training pool when it can help: more than one worker, shards and examples per batch,
 * and a model without non-trainable state. The caller closes it.
 */
export async function startTrainPool(model: tf.LayersModel, o: { workers?: number; shards: number; batchSize: number }, backend: string, inputShape: readonly [number, number, number], numClasses: number): Promise<TrainPool | undefined> {
  const n = Math.min(cappedWorkers(o.workers), o.shards, o.batchSize);
  if (n <= 1) return undefined;
  const pool = await TrainPool.create(model, { workers: n, backend, inputShape: [...inputShape] as [number, number, number], numClasses });
  log(`advkit: training on ${n} worker threads (${o.shards} shards per batch)`);
  return pool;
}

/** Progress bar per epoch on stderr and one log line per finished epoch, for trainClassifier. */
export function trainingCallbacks(nBatches: number, epochs: number, robustEps?: number): { onBatch: (p: BatchProgress) => void; onEpoch: (r: EpochRecord) => void } {
  const bar = progressBar('epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} | acc {acc} | ETA {eta_formatted}');
  let shown = 0;
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  return {
    onBatch: (p) => {
      if (p.epoch !== shown) {
        bar.stop();
        bar.start(nBatches, { epoch: p.epoch, epochs: p.epochs, loss: '-', acc: '-' });
        shown = p.epoch;
      }
      bar.update(p.batch, { epoch: p.epoch, epochs: p.epochs, loss: p.loss.toFixed(4), acc: pct(p.accuracy) });
    },
    onEpoch: (r) => {
      bar.stop();
      shown = 0;
      const robust = r.valRobustAccuracy !== undefined ? `, held-out PGD-10 accuracy at eps ${robustEps} ${pct(r.valRobustAccuracy)} (trained at eps ${r.eps?.toFixed(3)})` : '';
      log(`advkit: epoch ${r.epoch}/${epochs}: loss ${r.loss.toFixed(4)}, train accuracy ${pct(r.accuracy)}, held-out accuracy ${pct(r.valAccuracy ?? 0)}${robust} (${r.seconds.toFixed(1)} s)`);
    },
  };
}
