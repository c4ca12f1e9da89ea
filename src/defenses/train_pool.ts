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
import { flatValuesInto, type ShardSpec } from './train_step.js';
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

  /** Buffers shared with the workers (SharedArrayBuffer), by name, reused from step to step. */
  private buffers = new Map<string, Float32Array>();
  private busy = false;

  /**
   * A buffer of `size` floats the workers see without a copy, kept under `name` and reused while
   * its size stays the same. Reusing memory matters as much as not copying it: fresh memory is
   * slow to fault in on some VMs (45 MB, ResNet-18's weights: ~115 ms fresh, ~3 ms reused), and a
   * step used to allocate the weights once per worker and the gradients once per shard.
   */
  shared(name: string, size: number): Float32Array {
    let b = this.buffers.get(name);
    if (!b || b.length !== size) {
      b = new Float32Array(new SharedArrayBuffer(size * 4));
      this.buffers.set(name, b);
    }
    return b;
  }

  /**
   * One step's shards on the workers, at the values of `weights` (the trainable variables, in
   * trainableWeights order), written into a shared buffer once for all workers. Each result holds
   * the shard's gradients (flattened like the weights), loss part and hits, and with `state` (the
   * non-trainable weights the shards start from, flattened) the state after the shard. Gradients
   * and states are shared buffers of this pool, valid until its next step; one step runs at a time.
   */
  async shards(weights: readonly tf.Tensor[], state: Float32Array | undefined, x: Float32Array, shape: readonly [number, number, number, number], y: Int32Array,
    ranges: ReadonlyArray<readonly [number, number, ShardSpec]>): Promise<Array<{ grads: Float32Array; loss: number; hits: number; state?: Float32Array }>> {
    if (this.busy) throw new InvalidArgumentError('Error in TrainPool.shards: the pool is running another step; give each concurrent training loop its own pool.');
    this.busy = true;
    try {
      const flat = flatValuesInto(weights, this.shared('weights', weights.reduce((a, t) => a + t.size, 0)));
      const start = state ? this.shared('state', state.length) : undefined;
      start?.set(state!);
      const per = shape[1] * shape[2] * shape[3];
      return await Promise.all(ranges.map(async ([s0, s1, spec], s) => {
        const grads = this.shared(`grads ${s}`, flat.length);
        const stateOut = start ? this.shared(`state ${s}`, start.length) : undefined;
        const xs = x.slice(s0 * per, s1 * per);
        const r = await this.submit({ weights: flat, grads, state: start, stateOut, x: xs, shape: [s1 - s0, shape[1], shape[2], shape[3]], y: y.slice(s0, s1), spec }, [xs.buffer]);
        return { grads, loss: r.loss!, hits: r.hits!, state: stateOut };
      }));
    } finally {
      this.busy = false;
    }
  }
}
