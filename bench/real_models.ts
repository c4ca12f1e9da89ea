/**
 * Benchmarks of the models people bring (DESIGN.md, "What still falls off the fast path"), at
 * the shapes of the PyTorch reference (`../shared/reference/torch_pgd.py`): MobileNetV2 at
 * 224x224x3, batch 8; ResNet-18 at 32x32x3 with torchvision's stem, batch 128; mini-Xception at
 * 64x64x1. Each is measured as the user's plain loop through `model.apply` (tfjs' own graph:
 * un-fused batch norm, ReLU6 as four kernels, weight gradients computed anyway), as advkit's
 * compiled PGD in this process (XNNPACK on ADVKIT_WASM_THREADS threads, one per core by default)
 * and over a data set on two worker threads (one XNNPACK thread each), its forward pass, and
 * an adversarial-training step (FGSM-RS, batch norm in training mode). With `torch` (the path of
 * torch_pgd.py) the PyTorch loops run in the same invocation, PGD through torch_pgd.py and the
 * training step through our bench/torch_adv_train.py, and each advkit row's ratio is over its
 * PyTorch counterpart; otherwise over the plain loop.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attackDataset, predictDataset } from '../src/attacks/dataset.js';
import { pgd } from '../src/attacks/pgd.js';
import { AttackPool } from '../src/attacks/pool.js';
import type { BackendName } from '../src/backend/index.js';
import { makeDataset } from '../src/data/dataset.js';
import { buildArchitecture, type ArchitectureOptions } from '../src/models/architectures.js';
import { fromLayersModel } from '../src/models/classifier.js';
import { loadClassifier, saveLayersModel } from '../src/models/io.js';
import { trainingStep } from '../src/defenses/train_step.js';
import { TrainPool } from '../src/defenses/train_pool.js';
import { Rng } from '../src/util/random.js';
import { wasmThreads } from '../src/backend/wasm_threads.js';

export interface RealModelBench {
  /** advkit architecture name. */
  arch: string;
  options: ArchitectureOptions;
  batch: number;
  /** torch_pgd.py --arch / --size, when PyTorch has the same architecture. */
  torch?: { arch: string; size: number };
}

export const REAL_MODELS: Record<string, RealModelBench> = {
  'mobilenet-v2': { arch: 'mobilenet-v2', options: { inputShape: [224, 224, 3] }, batch: 8, torch: { arch: 'mobilenet_v2', size: 224 } },
  'resnet-18': { arch: 'resnet-18', options: { inputShape: [32, 32, 3], variant: 'imagenet' }, batch: 128, torch: { arch: 'resnet18', size: 32 } },
  'mini-xception': { arch: 'mini-xception', options: { inputShape: [64, 64, 1], numClasses: 7 }, batch: 64 },
};

/** PGD's eps and step in torch_pgd.py for these models. */
const EPS = 4 / 255;

export interface RealRow { loop: string; batch: number; imageStepsPerSecond: number; msPerStep: number; ratio: number | null; peakRssMb: number }

type Measure = (name: string, fn: () => Promise<void>, iterations: number) => Promise<{ ms: number; peakRssMb: number }>;

/** Our PyTorch FGSM-RS training step (bench/torch_adv_train.py; torch_pgd.py has no training loop). */
const TORCH_TRAIN = fileURLToPath(new URL('../../bench/torch_adv_train.py', import.meta.url));
/** Our PyTorch forward pass (bench/torch_forward.py): eval mode, inference_mode, one batch. */
const TORCH_FORWARD = fileURLToPath(new URL('../../bench/torch_forward.py', import.meta.url));

/**
 * Runs a PyTorch reference script (Debian's python3-torch) and returns the rate it prints under
 * `key`, or a reason it could not.
 */
export function torchReference(script: string, args: string[], key: string): { rate: number } | { error: string } {
  const r = spawnSync('/usr/bin/python3', [script, ...args, '--threads', String(os.availableParallelism())], { encoding: 'utf8' });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop()! };
  try {
    return { rate: (JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>)[key]! };
  } catch {
    return { error: `unexpected output ${JSON.stringify(r.stdout.slice(0, 80))}` };
  }
}

export async function realModelRows(spec: RealModelBench, backend: BackendName, o: { steps: number; iterations: number; batch?: number; torch?: string; workerScaling: boolean; measure: Measure; onRow: (r: RealRow) => void }): Promise<void> {
  const batch = o.batch ?? spec.batch;
  const net = buildArchitecture(spec.arch, { seed: 0, ...spec.options });
  const shape = net.inputs[0]!.shape.slice(1) as [number, number, number];
  const numClasses = (net.outputs[0]!.shape[1] as number);
  const classifier = fromLayersModel(net);
  const rng = new Rng(batch);
  const size = batch * shape[0] * shape[1] * shape[2];
  const x = tf.tensor4d(Float32Array.from({ length: size }, () => rng.next()), [batch, ...shape]);
  const y = Int32Array.from({ length: batch }, (_, i) => i % numClasses);
  let torchRate: number | undefined;
  let torchTrainRate: number | undefined;
  let torchForwardRate: number | undefined;
  const threads = backend === 'wasm' ? wasmThreads() ?? 1 : 1;
  const here = `${threads} XNNPACK thread${threads === 1 ? '' : 's'}`;
  const row = (loop: string, msPerStep: number, peakRssMb: number, base?: number): RealRow => {
    const rate = batch / (msPerStep / 1000);
    const ref = torchRate ?? base;
    return { loop, batch, imageStepsPerSecond: rate, msPerStep, ratio: ref === undefined ? null : rate / ref, peakRssMb };
  };
  if (o.torch && spec.torch) {
    const common = ['--arch', spec.torch.arch, '--size', String(spec.torch.size), '--batch', String(batch), '--rounds', '3', '--classes', String(numClasses)];
    const t = torchReference(o.torch, [...common, '--steps', String(o.steps)], 'image_steps_per_s');
    if ('rate' in t) {
      torchRate = t.rate;
      o.onRow({ loop: `PyTorch PGD (torch_pgd.py --arch ${spec.torch.arch}, ${os.availableParallelism()} threads)`, batch, imageStepsPerSecond: t.rate, msPerStep: (batch / t.rate) * 1000, ratio: 1, peakRssMb: 0 });
    } else {
      o.onRow({ loop: `PyTorch PGD: not run (${t.error})`, batch, imageStepsPerSecond: 0, msPerStep: 0, ratio: null, peakRssMb: 0 });
    }
    const tf0 = torchReference(TORCH_FORWARD, common, 'images_per_s');
    if ('rate' in tf0) {
      torchForwardRate = tf0.rate;
      o.onRow({ loop: `PyTorch forward (bench/torch_forward.py, ${os.availableParallelism()} threads; images/s)`, batch, imageStepsPerSecond: tf0.rate, msPerStep: (batch / tf0.rate) * 1000, ratio: 1, peakRssMb: 0 });
    }
    const tt = torchReference(TORCH_TRAIN, common, 'images_per_s');
    if ('rate' in tt) {
      torchTrainRate = tt.rate;
      o.onRow({ loop: `PyTorch FGSM-RS training step (bench/torch_adv_train.py, ${os.availableParallelism()} threads)`, batch, imageStepsPerSecond: tt.rate, msPerStep: (batch / tt.rate) * 1000, ratio: 1, peakRssMb: 0 });
    }
  }
  // The plain loop a user writes: tf.grad through model.apply, sign step, projection.
  const plainStep = async () => {
    const g = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(y, 'int32'), numClasses), net.apply(a, { training: false }) as tf.Tensor))(x));
    await g.data();
    g.dispose();
  };
  const plain = await o.measure('plain', plainStep, 1);
  const plainRate = batch / (plain.ms / 1000);
  o.onRow(row('plain PGD step through model.apply', plain.ms, plain.peakRssMb, plainRate));
  const ours = await o.measure('advkit', async () => { const r = await pgd(classifier, x, y, { eps: EPS, steps: o.steps, seed: 1 }); r.adversarial.dispose(); }, o.iterations);
  o.onRow(row(`advkit pgd, one process (${here})`, ours.ms / o.steps, ours.peakRssMb, plainRate));
  const fwd = await o.measure('forward', async () => { const p = tf.tidy(() => classifier.logits(x)); await p.data(); p.dispose(); }, o.iterations);
  const forwardRatio = (ms: number) => (torchForwardRate === undefined ? null : batch / (ms / 1000) / torchForwardRate);
  o.onRow({ ...row(`advkit forward, one process (${here}; images/s)`, fwd.ms, fwd.peakRssMb, plainRate), ratio: forwardRatio(fwd.ms) });
  if (o.workerScaling) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-bench-real-'));
    await saveLayersModel(net, dir);
    const { classifier: loaded } = await loadClassifier(dir);
    const n = batch * 4;
    const images = Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => rng.next());
    const ds = makeDataset('bench', images, Int32Array.from({ length: n }, (_, i) => i % numClasses), shape, Array.from({ length: numClasses }, (_, i) => String(i)));
    const pool = await AttackPool.create(dir, { workers: 2, backend });
    try {
      const m = await o.measure('dataset', async () => {
        for await (const b of attackDataset(pgd, loaded, ds, { eps: EPS, steps: o.steps, seed: 1 }, { batchSize: batch, pool })) tf.dispose([b.x, b.result.adversarial]);
      }, 1);
      o.onRow(row('advkit data-set PGD, 2 worker threads', m.ms / (o.steps * 4), m.peakRssMb, plainRate));
      // The clean pass of an evaluation: predictDataset on the same pool, 4 batches, o.iterations times.
      const f = await o.measure('dataset-forward', async () => { await predictDataset(loaded, ds, { batchSize: batch, pool }); }, o.iterations);
      o.onRow({ ...row('advkit data-set forward, 2 worker threads (images/s)', f.ms / 4, f.peakRssMb, plainRate), ratio: forwardRatio(f.ms / 4) });
    } finally {
      await pool.close();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
  const labels = tf.tensor1d(y, 'int32');
  const opt = tf.train.sgd(1e-4);
  const adversarial = { method: 'fgsm-rs' as const, eps: EPS, steps: 1, beta: 0, rampEpochs: 0 };
  const train = await o.measure('adv-train', async () => { await trainingStep(net, opt, x, labels, { numClasses, adversarial, seed: 2 }); }, 1);
  o.onRow({ ...row(`advkit adversarial-training step (FGSM-RS, batch norm in training mode; ${here})`, train.ms, train.peakRssMb, plainRate), ratio: torchTrainRate === undefined ? null : batch / (train.ms / 1000) / torchTrainRate });
  if (o.workerScaling) {
    // Data-parallel: 2 shards on 2 workers, each shard normalised by its own batch statistics
    // (as PyTorch DistributedDataParallel without SyncBatchNorm), moving statistics merged.
    const trainPool = await TrainPool.create(net, { workers: 2, backend, inputShape: shape, numClasses });
    try {
      const step = async () => { await trainingStep(net, opt, x, labels, { numClasses, adversarial, seed: 2, shards: 2, pool: trainPool }); };
      await step();
      const sharded = await o.measure('adv-train-pool', step, 1);
      o.onRow({ ...row('advkit adversarial-training step, 2 shards on 2 worker threads (batch norm per shard)', sharded.ms, sharded.peakRssMb, plainRate), ratio: torchTrainRate === undefined ? null : batch / (sharded.ms / 1000) / torchTrainRate });
    } finally {
      await trainPool.close();
    }
  }
  tf.dispose([x, labels]);
  net.dispose();
}
