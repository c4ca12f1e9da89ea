/**
 * A pool of worker threads, each with its own tfjs backend and its own copy of a model loaded
 * from a model directory, that runs attack batches in parallel (wasm under Node is
 * single-threaded, so this is how advkit uses every core). Results do not depend on the number
 * of workers: batches are the same and every random draw is seeded per example.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AttackName } from '../attacks/registry.js';
import type { ClassifierOptions } from '../models/classifier.js';
import { readModelFiles } from '../models/io.js';
import { AdvkitError, BackendError, checkFiniteNumber } from '../util/errors.js';
import { backendStatus } from './index.js';
import type { WorkerInit, WorkerJob, WorkerReply } from './worker.js';

function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  // From dist the worker sits beside this file; from the TypeScript sources (tests), in dist.
  const file = here.endsWith('.js') ? path.join(path.dirname(here), 'worker.js') : path.resolve(path.dirname(here), '../../dist/src/backend/worker.js');
  if (!existsSync(file)) throw new BackendError(`Error in AttackPool: the worker script ${file} is missing; run npm run build.`);
  return file;
}

/** The number of cores this process may use. */
export function defaultWorkers(): number {
  return os.availableParallelism?.() ?? os.cpus().length;
}

type Pending = { job: WorkerJob; resolve: (r: WorkerReply) => void; reject: (e: Error) => void };

export class AttackPool {
  private idle: Worker[] = [];
  private queue: Pending[] = [];
  private inFlight = new Map<Worker, Pending>();
  private nextId = 0;
  private closed = false;

  private constructor(private readonly workers: Worker[]) {
    this.idle = [...workers];
    for (const w of workers) {
      w.on('message', (reply: WorkerReply) => this.onReply(w, reply));
      w.on('error', (err) => this.onFailure(w, err));
    }
  }

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
    const file = workerFile();
    const workers = await Promise.all(Array.from({ length: n }, () => new Promise<Worker>((resolve, reject) => {
      const w = new Worker(file, { workerData: init });
      const fail = (err: Error) => reject(new BackendError(`Error in AttackPool: a worker failed to start: ${err.message}`));
      w.once('error', fail);
      w.once('message', (m: { ready?: boolean }) => {
        w.off('error', fail);
        if (m.ready) resolve(w);
      });
    })));
    return new AttackPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  run(job: Omit<WorkerJob, 'id'>): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new Error('AttackPool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { ...job, id: this.nextId++ }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.inFlight.set(w, p);
      w.postMessage(p.job, [p.job.images.buffer as ArrayBuffer]);
    }
  }

  private onReply(w: Worker, reply: WorkerReply): void {
    const p = this.inFlight.get(w);
    if (!p) return;
    this.inFlight.delete(w);
    this.idle.push(w);
    if (reply.error) {
      const e = reply.error;
      p.reject(e.code ? new AdvkitError(e.code, e.message, (e.exitCode as 1 | 2) ?? 1) : new Error(e.message));
    } else {
      p.resolve(reply);
    }
    this.pump();
  }

  private onFailure(w: Worker, err: Error): void {
    const p = this.inFlight.get(w);
    this.inFlight.delete(w);
    p?.reject(new AdvkitError('E_WORKER', `a worker thread failed: ${err.message}`, 1));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue) p.reject(new Error('AttackPool closed'));
    this.queue = [];
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export type { AttackName };
