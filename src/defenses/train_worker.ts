/**
 * A worker thread of the training pool (train_pool.ts): its own tfjs backend and its own copy
 * of the model under training; for each job it takes the current weights and computes one
 * shard's gradients (train_step.ts). Runs as compiled JS (dist/src/defenses/train_worker.js).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/index.js';
import type { PoolReply } from '../backend/pool.js';
import { trainingView } from './adversarial_training.js';
import { errorPayload } from '../util/errors.js';
import { assignFlat, flatValuesInto, shardGradients, stateVariables, trainableVariables, type ShardSpec } from './train_step.js';

export interface TrainWorkerInit {
  backend: string;
  artifacts: tf.io.ModelArtifacts;
  inputShape: [number, number, number];
  numClasses: number;
}

export interface TrainJob {
  id: number;
  /** The trainable weights, flattened in the model's trainableWeights order (shared with the host). */
  weights: Float32Array;
  /** Where the shard's gradients go, flattened like the weights (shared with the host). */
  grads: Float32Array;
  x: Float32Array;
  shape: [number, number, number, number];
  y: Int32Array;
  spec: ShardSpec;
  /** The non-trainable weights to start from (flattened), and where they go after the shard. */
  state?: Float32Array;
  stateOut?: Float32Array;
}

export interface TrainReply extends PoolReply {
  loss?: number;
  hits?: number;
}

const init = workerData as TrainWorkerInit;
await initBackend(init.backend);
const model = await tf.loadLayersModel(tf.io.fromMemory(init.artifacts));
const vars = trainableVariables(model);
const stateVars = stateVariables(model);
const view = trainingView(model, init.inputShape, init.numClasses);

parentPort!.on('message', (job: TrainJob) => {
  void (async () => {
    const x = tf.tensor4d(job.x, job.shape);
    const y = tf.tensor1d(job.y, 'int32');
    try {
      assignFlat(vars, job.weights);
      if (job.state) assignFlat(stateVars, job.state);
      const r = await shardGradients(model, vars, view, x, y, job.spec);
      flatValuesInto(r.grads, job.grads);
      tf.dispose(r.grads);
      if (job.stateOut) flatValuesInto(stateVars, job.stateOut);
      parentPort!.postMessage({ id: job.id, loss: r.loss, hits: r.hits } satisfies TrainReply);
    } catch (err) {
      parentPort!.postMessage({ id: job.id, error: errorPayload(err) } satisfies TrainReply);
    } finally {
      tf.dispose([x, y]);
    }
  })();
});
parentPort!.postMessage({ ready: true });
