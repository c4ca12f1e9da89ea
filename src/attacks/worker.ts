/**
 * A worker thread of the attack pool (pool.ts): its own tfjs backend and its own copy of the
 * model, running whole attack batches sent by the main thread. Runs as compiled JS
 * (dist/src/attacks/worker.js).
 */
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { ATTACKS, type AttackName } from './registry.js';
import type { Distances } from './lp.js';
import { checkedPredictions, fromGraphModel, fromLayersModel, type Classifier, type ClassifierOptions } from '../models/classifier.js';
import { initBackend } from '../backend/index.js';
import { loadClassifier } from '../models/io.js';
import { errorPayload, type ErrorPayload } from '../util/errors.js';

export interface WorkerInit {
  backend: string;
  format: 'layers-model' | 'graph-model' | 'onnx';
  artifacts: tf.io.ModelArtifacts;
  /** The model's location (an ONNX model is read from it in the worker). */
  location?: string;
  classifierOptions: ClassifierOptions;
  /** Applied in order to the loaded model: a compiled module's export `(classifier, args) => Classifier`. */
  wrappers: Array<{ file: string; export: string; args: unknown }>;
}

export interface WorkerJob {
  id: number;
  /** 'predict' returns the predicted classes of the images and runs no attack. */
  kind?: 'attack' | 'predict';
  attack: AttackName;
  options: Record<string, unknown>;
  images: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  seeds: Int32Array;
  targets?: Int32Array;
  /** Also return the clean predictions (argmax of the logits of the images). */
  clean?: boolean;
}

export interface WorkerReply {
  id: number;
  error?: ErrorPayload;
  adversarial?: Float32Array;
  success?: Uint8Array;
  predictions?: Int32Array;
  norms?: Distances;
  loss?: Float32Array;
  steps?: number;
  restarts?: number;
  minimumNorm?: Float32Array;
  cleanPredictions?: Int32Array;
}

const init = workerData as WorkerInit;
await initBackend(init.backend);
let model: Classifier = init.format === 'onnx'
  ? (await loadClassifier(init.location!, init.classifierOptions)).classifier
  : init.format === 'graph-model'
    ? fromGraphModel(await tf.loadGraphModel(tf.io.fromMemory(init.artifacts)), init.classifierOptions)
    : fromLayersModel(await tf.loadLayersModel(tf.io.fromMemory(init.artifacts)), init.classifierOptions);
for (const w of init.wrappers) {
  const wrap = (await import(pathToFileURL(w.file).href) as Record<string, (m: Classifier, args: unknown) => Classifier>)[w.export];
  if (typeof wrap !== 'function') throw new Error(`${w.file} has no export ${w.export}`);
  model = wrap(model, w.args);
}

// The model's forward passes, reported to the main thread at most every 200 ms while a job runs
// (`{ progress: n }`), so a progress bar moves within a batch of a slow model.
{
  const inner = model;
  let pending = 0;
  let last = 0;
  model = { ...inner, logits: (x) => {
    pending++;
    const now = Date.now();
    if (now - last >= 200) { parentPort!.postMessage({ progress: pending }); pending = 0; last = now; }
    return inner.logits(x);
  } };
}

parentPort!.on('message', (job: WorkerJob) => {
  void (async () => {
    const x = tf.tensor4d(job.images, job.shape);
    try {
      if (job.kind === 'predict') {
        const predictions = await checkedPredictions('AttackPool', model, x);
        parentPort!.postMessage({ id: job.id, predictions } satisfies WorkerReply, [predictions.buffer as ArrayBuffer]);
        return;
      }
      const opts = { ...job.options, seed: job.seeds, ...(job.targets ? { goal: { kind: 'targeted', labels: job.targets } } : {}) } as unknown as { eps: number } & Record<string, unknown>;
      let cleanPredictions: Int32Array | undefined;
      if (job.clean) {
        const p = tf.tidy(() => tf.argMax(model.logits(x), 1));
        cleanPredictions = Int32Array.from(await p.data());
        p.dispose();
      }
      const r = await ATTACKS[job.attack](model, x, job.labels, opts);
      const adversarial = (await r.adversarial.data()) as Float32Array;
      r.adversarial.dispose();
      const reply: WorkerReply = { id: job.id, adversarial, success: r.success, predictions: r.predictions, norms: r.norms, loss: r.loss, steps: r.steps, restarts: r.restarts, ...(r.minimumNorm ? { minimumNorm: r.minimumNorm } : {}), cleanPredictions };
      parentPort!.postMessage(reply, [adversarial.buffer as ArrayBuffer]);
    } catch (err) {
      parentPort!.postMessage({ id: job.id, error: errorPayload(err) } satisfies WorkerReply);
    } finally {
      x.dispose();
    }
  })();
});
parentPort!.postMessage({ ready: true });
