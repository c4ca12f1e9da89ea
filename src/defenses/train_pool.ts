/**
 * Data-parallel training on worker threads: each worker holds a copy of the model and computes
 * the gradients of one shard of a batch at the weights it is sent (train_step.ts); the main
 * thread sums the shards in order and applies the optimizer. The result does not depend on the
 * number of workers (tests/defenses/train.test.ts). Batch-norm models shard too: each shard
 * normalises by its own statistics and the moving statistics are merged (train_step.ts).
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
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const init: TrainWorkerInit = { backend: options.backend ?? backendStatus()?.name ?? 'wasm', artifacts: artifacts!, inputShape: options.inputShape, numClasses: options.numClasses };
    const workers = await ThreadPool.startWorkers('TrainPool', workerFile(import.meta.url, 'train_worker.js'), init, n);
    return new TrainPool(workers, 'TrainPool');
  }

  /**
   * One shard's gradients (flattened in trainableWeights order), loss part and hits. With `state`
   * (the non-trainable weights, flattened) the worker starts from it and returns its own after
   * the shard (train_step.ts merges the shards' states).
   */
  async gradients(weights: Float32Array, x: Float32Array, shape: [number, number, number, number], y: Int32Array, spec: ShardSpec, state?: Float32Array): Promise<{ grads: Float32Array; loss: number; hits: number; state?: Float32Array }> {
    const w = weights.slice();
    const xs = x.slice();
    const st = state?.slice();
    const r = await this.submit({ weights: w, x: xs, shape, y: y.slice(), spec, state: st }, [w.buffer, xs.buffer, ...(st ? [st.buffer] : [])]);
    return { grads: r.grads!, loss: r.loss!, hits: r.hits!, state: r.state };
  }
}
