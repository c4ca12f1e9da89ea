/** The attack pool: attack batches on worker threads (attacks/worker.ts), results as on one thread. */
import type { ClassifierOptions } from '../models/classifier.js';
import { readModelFiles } from '../models/io.js';
import { backendStatus } from '../backend/index.js';
import { defaultWorkers, ThreadPool, workerFile } from '../backend/pool.js';
import { checkFiniteNumber } from '../util/errors.js';
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
    return new AttackPool(workers, 'AttackPool');
  }

  run(job: Omit<WorkerJob, 'id'>): Promise<WorkerReply> {
    return this.submit(job, [job.images.buffer as ArrayBuffer]);
  }
}

