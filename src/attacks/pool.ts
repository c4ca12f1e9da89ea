/** The attack pool: attack batches on worker threads (attacks/worker.ts), results as on one thread. */
import path from 'node:path';
import type { Classifier, ClassifierOptions } from '../models/classifier.js';
import { readModelFiles } from '../models/io.js';
import { backendStatus } from '../backend/index.js';
import { defaultWorkers, ThreadPool, workerFile } from '../backend/pool.js';
import { checkFiniteNumber, InvalidArgumentError } from '../util/errors.js';
import type { WorkerInit, WorkerJob, WorkerReply } from './worker.js';

/**
 * Attack batches on worker threads, each with its own backend and its own copy of the model
 * (loaded from a model directory).
 */
export class AttackPool extends ThreadPool<WorkerJob, WorkerReply> {
  /** Starts `workers` threads, each loading the model in `location` on the current backend. */
  static async create(location: string, options: { workers?: number; backend?: string; classifierOptions?: ClassifierOptions } = {}): Promise<AttackPool> {
    const n = checkFiniteNumber('AttackPool.create', 'workers', options.workers ?? defaultWorkers(), { integer: true, min: 1 });
    const files = await readModelFiles(location);
    const md = files.metadata;
    const init: WorkerInit = {
      backend: options.backend ?? backendStatus()?.name ?? 'wasm',
      format: files.format,
      artifacts: files.artifacts,
      classifierOptions: { bounds: md?.bounds, normalization: md?.normalization, ...(options.classifierOptions ?? {}) },
    };
    const workers = await ThreadPool.startWorkers('AttackPool', workerFile(import.meta.url, 'worker.js'), init, n);
    const pool = new AttackPool(workers, 'AttackPool');
    pool.location = path.resolve(location.endsWith('.json') ? path.dirname(location) : location);
    pool.custom = options.classifierOptions !== undefined;
    return pool;
  }

  /** The model directory the workers loaded. */
  location = '';
  private custom = false;

  /**
   * Refuses to attack `model` here unless it is the workers' model: loaded by loadClassifier from
   * the same directory, unwrapped (a defended classifier would otherwise be attacked bare).
   */
  checkRuns(fn: string, model: Classifier): void {
    const same = !this.custom && model.source?.location === this.location;
    if (!same) {
      const what = model.source ? `the model loaded from ${model.source.location}` : 'a classifier that is not the bare model of a directory (a defended or wrapped classifier, or one built in code)';
      throw new InvalidArgumentError(`Error in ${fn}: the worker pool attacks its own copy of the model in ${this.location}, but this call's classifier is ${what}; attack it without a pool, or build the pool from its model directory.`);
    }
  }

  run(job: Omit<WorkerJob, 'id'>): Promise<WorkerReply> {
    return this.submit(job, [job.images.buffer as ArrayBuffer]);
  }
}

