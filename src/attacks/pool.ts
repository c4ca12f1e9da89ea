/** The attack pool: attack batches on worker threads (attacks/worker.ts), results as on one thread. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sameSource, type Classifier, type ClassifierOptions, type ClassifierSource } from '../models/classifier.js';
import { classifierOptionsFor, modelDirectory, onnxFile, readModelFiles } from '../models/io.js';
import { backendStatus } from '../backend/index.js';
import { defaultWorkers, ThreadPool, workerFile } from '../backend/pool.js';
import { check, checkFiniteNumber, InvalidArgumentError } from '../util/errors.js';
import type { WorkerInit, WorkerJob, WorkerReply } from './worker.js';

/**
 * Attack batches on worker threads, each with its own backend and its own copy of the classifier:
 * the model loaded from its directory, then rebuilt as the classifier's source describes (a
 * defended classifier with its preprocessing, for instance).
 */
export class AttackPool extends ThreadPool<WorkerJob, WorkerReply> {
  /**
   * Starts `workers` threads on the current backend, each building the classifier: the bare model
   * in the directory `from`, or a classifier with a source (loaded by loadClassifier, possibly
   * wrapped by `defend`), built again from that source.
   */
  static async create(from: string | Classifier, options: { workers?: number; backend?: string; classifierOptions?: ClassifierOptions } = {}): Promise<AttackPool> {
    const n = checkFiniteNumber('AttackPool.create', 'workers', options.workers ?? defaultWorkers(), { integer: true, min: 1 });
    let source: ClassifierSource;
    if (typeof from === 'string') {
      source = { location: from.toLowerCase().endsWith('.onnx') ? path.resolve(from) : modelDirectory(from) };
    } else {
      check(from.source !== undefined, 'AttackPool.create', () => 'this classifier has no source to build it from in a worker (it was built in code, or wrapped in a way that cannot be described, such as a surrogate gradient); attack it without a pool.');
      check(options.classifierOptions === undefined, 'AttackPool.create', () => 'classifierOptions apply to a model directory; a classifier brings its own.');
      source = from.source!;
    }
    // An ONNX model is read again by each worker from its file; a TensorFlow.js one is sent as artifacts.
    const onnx = await onnxFile(source.location);
    const files = onnx ? undefined : await readModelFiles(source.location);
    const md = files?.metadata;
    const init: WorkerInit = {
      backend: options.backend ?? backendStatus()?.name ?? 'wasm',
      format: files?.format ?? 'onnx',
      artifacts: files?.artifacts ?? {},
      location: source.location,
      classifierOptions: onnx ? { ...source.options, ...options.classifierOptions } : classifierOptionsFor(md, { ...source.options, ...options.classifierOptions }, source.location),
      // Wrappers run as compiled JS in the workers, as the worker itself does.
      wrappers: (source.wrappers ?? []).map((w) => {
        const file = fileURLToPath(w.module);
        return { file: workerFile(w.module, path.basename(file).replace(/\.ts$/, '.js')), export: w.export, args: w.args };
      }),
    };
    const workers = await ThreadPool.startWorkers('AttackPool', workerFile(import.meta.url, 'worker.js'), init, n);
    const pool = new AttackPool(workers, 'AttackPool');
    pool.source = source;
    pool.custom = options.classifierOptions !== undefined;
    return pool;
  }

  /** What the workers built. */
  source: ClassifierSource = { location: '' };
  private custom = false;

  /** The model directory the workers loaded. */
  get location(): string {
    return this.source.location;
  }

  /**
   * Refuses to attack `model` here unless the workers built the same classifier (the same source:
   * model directory and wrappers), so no call attacks something other than what it was given.
   */
  checkRuns(fn: string, model: Classifier): void {
    if (this.custom || !sameSource(model.source, this.source)) {
      const what = model.source ? `built from ${describeSource(model.source)}` : 'one with no source (built in code, or wrapped in a way that cannot be described)';
      throw new InvalidArgumentError(`Error in ${fn}: the worker pool attacks ${this.custom ? 'a model loaded with custom classifierOptions from ' : ''}${describeSource(this.source)}, but this call's classifier is ${what}; attack it without a pool, or build the pool from this classifier (AttackPool.create(classifier)).`);
    }
  }

  run(job: Omit<WorkerJob, 'id'>): Promise<WorkerReply> {
    return this.submit(job, [job.images.buffer as ArrayBuffer]);
  }

  /** The classes the workers' classifier predicts for a batch of images (NHWC, float32). */
  async predict(images: Float32Array, shape: [number, number, number, number]): Promise<Int32Array> {
    const own = images.byteOffset === 0 && images.byteLength === images.buffer.byteLength ? images : images.slice();
    const reply = await this.submit({ kind: 'predict', attack: 'fgsm', options: {}, images: own, shape, labels: new Int32Array(0), seeds: new Int32Array(0) }, [own.buffer as ArrayBuffer]);
    return reply.predictions!;
  }
}


function describeSource(s: ClassifierSource): string {
  const wrapped = (s.wrappers ?? []).map((w) => `${w.export}(${JSON.stringify(w.args)})`);
  return `the model in ${s.location}${wrapped.length ? ` wrapped by ${wrapped.join(', then ')}` : ''}`;
}
