/**
 * Data-parallel training on worker threads: each worker holds a copy of the model and computes
 * the gradients of one shard of a batch at the weights it is sent (train_step.ts); the main
 * thread sums the shards in order and applies the optimizer. The result does not depend on the
 * number of workers (tests/defenses/train.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { backendStatus } from '../backend/index.js';
import { defaultWorkers, ThreadPool, workerFile } from '../backend/pool.js';
import { checkFiniteNumber, InvalidArgumentError } from '../util/errors.js';
import type { ShardSpec } from './train_step.js';
import type { TrainJob, TrainReply, TrainWorkerInit } from './train_worker.js';

export class TrainPool extends ThreadPool<TrainJob, TrainReply> {
  /** Starts `workers` threads, each with a copy of `model` (topology and current weights). */
  static async create(model: tf.LayersModel, options: { workers?: number; backend?: string; inputShape: [number, number, number]; numClasses: number }): Promise<TrainPool> {
    const fn = 'TrainPool.create';
    const n = checkFiniteNumber(fn, 'workers', options.workers ?? defaultWorkers(), { integer: true, min: 1 });
    if (model.nonTrainableWeights.length > 0) {
      throw new InvalidArgumentError(`Error in ${fn}: the model has non-trainable state (e.g. BatchNormalization statistics), which shards cannot update; train it in one thread.`);
    }
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const init: TrainWorkerInit = { backend: options.backend ?? backendStatus()?.name ?? 'wasm', artifacts: artifacts!, inputShape: options.inputShape, numClasses: options.numClasses };
    const workers = await ThreadPool.startWorkers('TrainPool', workerFile(import.meta.url, 'train_worker.js'), init, n);
    return new TrainPool(workers, 'TrainPool');
  }

  /** One shard's gradients (flattened in trainableWeights order), loss part and hits. */
  async gradients(weights: Float32Array, x: Float32Array, shape: [number, number, number, number], y: Int32Array, spec: ShardSpec): Promise<{ grads: Float32Array; loss: number; hits: number }> {
    const w = weights.slice();
    const xs = x.slice();
    const r = await this.submit({ weights: w, x: xs, shape, y: y.slice(), spec }, [w.buffer, xs.buffer]);
    return { grads: r.grads!, loss: r.loss!, hits: r.hits! };
  }
}
