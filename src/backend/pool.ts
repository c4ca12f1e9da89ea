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
import { AdvkitError, BackendError, type ErrorPayload } from '../util/errors.js';

/** A compiled worker script beside this one's compiled form (from the TypeScript sources, in dist). */
export function workerFile(fromUrl: string, name: string): string {
  const here = fileURLToPath(fromUrl);
  const dir = path.dirname(here);
  const root = path.resolve(dir, '../..'); // src/<area>/ -> the package
  const file = here.endsWith('.js') ? path.join(dir, name) : path.join(root, 'dist', path.relative(root, dir), name);
  if (!existsSync(file)) throw new BackendError(`Error: the worker script ${file} is missing; run npm run build.`);
  return file;
}

/** The number of cores this process may use. */
export function defaultWorkers(): number {
  return os.availableParallelism?.() ?? os.cpus().length;
}

export interface PoolReply {
  id: number;
  error?: ErrorPayload;
}

type Pending<J, R> = { job: J; transfer: ArrayBuffer[]; resolve: (r: R) => void; reject: (e: Error) => void };

/**
 * Worker threads started from one script with the same init data, each taking one job at a time
 * from a queue. A reply with `error` rejects its job with that error (an AdvkitError keeps its
 * code and exit code).
 */
export class ThreadPool<J extends { id: number }, R extends PoolReply> {
  private idle: Worker[] = [];
  private queue: Array<Pending<J, R>> = [];
  private inFlight = new Map<Worker, Pending<J, R>>();
  private nextId = 0;
  private closed = false;

  protected constructor(private readonly workers: Worker[], private readonly label: string) {
    this.idle = [...workers];
    for (const w of workers) {
      w.on('message', (reply: R) => this.onReply(w, reply));
      w.on('error', (err) => this.onFailure(w, err));
    }
  }

  /** Starts n threads of `file` with `init` as workerData; each posts { ready: true } when set up. */
  protected static async startWorkers(label: string, file: string, init: unknown, n: number): Promise<Worker[]> {
    return Promise.all(Array.from({ length: n }, () => new Promise<Worker>((resolve, reject) => {
      // One XNNPACK (and onnxruntime) thread per worker: the pool itself spreads the work over the cores.
      const w = new Worker(file, { workerData: init, env: { ...process.env, ADVKIT_WASM_THREADS: '1', ADVKIT_ORT_THREADS: '1' } });
      const fail = (err: Error) => reject(new BackendError(`Error in ${label}: a worker failed to start: ${err.message}`));
      w.once('error', fail);
      w.once('message', (m: { ready?: boolean }) => {
        w.off('error', fail);
        if (m.ready) resolve(w);
      });
    })));
  }

  get size(): number {
    return this.workers.length;
  }

  protected submit(job: Omit<J, 'id'>, transfer: ArrayBuffer[] = []): Promise<R> {
    if (this.closed) return Promise.reject(new Error(`${this.label} is closed`));
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { ...job, id: this.nextId++ } as J, transfer, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.inFlight.set(w, p);
      w.postMessage(p.job, p.transfer);
    }
  }

  /** Told of work a worker reports while a job runs (`{ progress: n }` messages, not replies). */
  onWorkerProgress?: (n: number) => void;

  private onReply(w: Worker, reply: R): void {
    const progress = (reply as { progress?: unknown }).progress;
    if (typeof progress === 'number') { this.onWorkerProgress?.(progress); return; }
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
    for (const p of this.queue) p.reject(new Error(`${this.label} closed`));
    this.queue = [];
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
