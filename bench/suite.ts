/**
 * The benchmark suite for the performance-critical gradient loops. Fixed seeds and
 * shapes; the reference CNN of DESIGN.md (mnist-cnn) and the Madry CNN. Every advkit loop is
 * measured beside the same loop written plainly, as a user would (tf.grad of the loss, sign,
 * step, clip, per iteration), on the slow-but-correct "baseline" wasm kernels, in the same run;
 * ratios are taken within the run, never against remembered figures. Each figure is the median
 * of its measured iterations (after one warm-up).
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { attackDataset } from '../src/attacks/dataset.js';
import { AttackPool } from '../src/attacks/pool.js';
import { makeDataset } from '../src/data/dataset.js';
import { loadClassifier, saveLayersModel } from '../src/models/io.js';
import { pgd } from '../src/attacks/pgd.js';
import { fgsm } from '../src/attacks/fgsm.js';
import { initBackend, setWasmKernelMode, type BackendName } from '../src/backend/index.js';
import { buildArchitecture } from '../src/models/architectures.js';
import { fromLayersModel, type Classifier } from '../src/models/classifier.js';
import { Rng } from '../src/util/random.js';
import { trainingStep } from '../src/defenses/train_step.js';
import { TrainPool } from '../src/defenses/train_pool.js';
import { REAL_MODELS, realModelRows } from './real_models.js';

export interface BenchRow {
  backend: BackendName;
  model: string;
  loop: string;
  batch: number;
  /** Images processed per second times gradient steps (image-steps/s); images/s for forward passes. */
  imageStepsPerSecond: number;
  msPerStep: number;
  /** This loop's throughput over the plain baseline loop's, same model, batch and backend. */
  ratio: number | null;
  peakRssMb: number;
}

export interface BenchOptions {
  backends?: BackendName[];
  models?: string[];
  batches?: number[];
  /** Gradient steps per measured PGD run. */
  steps?: number;
  /** Measured iterations per case (after one warm-up). */
  iterations?: number;
  /** Measure data-set attacks on 1 and 2 worker threads (default true). */
  workerScaling?: boolean;
  /** Path of torch_pgd.py: run PyTorch's loop for the real models in the same run (ratios over it). */
  torch?: string;
  onRow?: (row: BenchRow) => void;
}

const EPS = 0.3;
/** Measured training steps per case (each is one step, so more are cheap). */
const TRAIN_ITERATIONS = 7;

function fixedBatch(n: number, seed: number): { x: tf.Tensor4D; y: Int32Array } {
  const rng = new Rng(seed);
  const data = new Float32Array(n * 784);
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  return { x: tf.tensor4d(data, [n, 28, 28, 1]), y: Int32Array.from({ length: n }, (_, i) => i % 10) };
}

/** The PGD loop as the one-image browser demos write it. */
async function plainPgd(net: tf.LayersModel, x: tf.Tensor4D, y: Int32Array, steps: number): Promise<void> {
  const labels = tf.oneHot(tf.tensor1d(y, 'int32'), 10);
  let adv = tf.clone(x);
  for (let s = 0; s < steps; s++) {
    const next = tf.tidy(() => {
      const g = tf.grad((a: tf.Tensor) => tf.losses.softmaxCrossEntropy(labels, net.predict(a) as tf.Tensor))(adv);
      const stepped = tf.add(adv, tf.mul(tf.sign(g), (2.5 * EPS) / steps));
      return tf.clipByValue(tf.minimum(tf.maximum(stepped, tf.sub(x, EPS)), tf.add(x, EPS)), 0, 1);
    });
    adv.dispose();
    adv = next as tf.Tensor4D;
  }
  await adv.data();
  tf.dispose([adv, labels]);
}

/**
 * One warm-up run of `fn`, then `iterations` timed runs: the median time (a shared 2-core machine
 * has outlier iterations that a mean would carry) and the peak RSS seen meanwhile. A plain loop:
 * `advkit bench` ships with the package, so it needs no benchmarking library.
 */
async function measure(_name: string, fn: () => Promise<void>, iterations: number): Promise<{ ms: number; peakRssMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
  try {
    await fn();
    const times: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const mid = times.length >> 1;
    return { ms: times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2, peakRssMb: Math.max(peak, process.memoryUsage().rss) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

export async function runBench(options: BenchOptions = {}): Promise<BenchRow[]> {
  const backends = options.backends ?? ['wasm'];
  const models = options.models ?? ['mnist-cnn', 'madry-cnn'];
  const steps = options.steps ?? 10;
  const iterations = options.iterations ?? 3;
  const rows: BenchRow[] = [];
  const push = (r: BenchRow) => { rows.push(r); options.onRow?.(r); };
  // ms per step of the plain baseline PGD loop at batch 128, per model (the data-set rows' base)
  const plain128 = new Map<string, number>();
  for (const backend of backends) {
    await initBackend(backend);
    const batches = options.batches ?? (backend === 'cpu' ? [32] : [1, 32, 128, 256]);
    for (const arch of models) {
      const real = REAL_MODELS[arch];
      if (real) {
        await realModelRows(real, backend, {
          steps, iterations, batch: options.batches?.[0], torch: options.torch, workerScaling: backend !== 'cpu' && options.workerScaling !== false, measure,
          onRow: (r) => push({ backend, model: arch, ...r }),
        });
        continue;
      }
      const net = buildArchitecture(arch, { seed: 0 });
      const model: Classifier = fromLayersModel(net);
      for (const batch of batches) {
        const { x, y } = fixedBatch(batch, batch);
        const perRun = batch * steps;
        const row = (loop: string, ms: number, peakRssMb: number, base?: number): BenchRow => ({
          backend, model: arch, loop, batch, imageStepsPerSecond: perRun / (ms / 1000), msPerStep: ms / steps,
          ratio: base === undefined ? null : base / ms, peakRssMb,
        });
        if (backend === 'wasm') setWasmKernelMode('baseline');
        const plain = await measure('plain', () => plainPgd(net, x, y, steps), iterations);
        if (backend === 'wasm') setWasmKernelMode('advkit');
        push(row(`plain PGD loop${backend === 'wasm' ? ' (baseline kernels)' : ''}`, plain.ms, plain.peakRssMb, plain.ms));
        if (backend === 'wasm') {
          const plainFast = await measure('plain-fast', () => plainPgd(net, x, y, steps), iterations);
          push(row('plain PGD loop (advkit kernels)', plainFast.ms, plainFast.peakRssMb, plain.ms));
        }
        const ours = await measure('advkit', async () => { const r = await pgd(model, x, y, { eps: EPS, steps, seed: 1 }); r.adversarial.dispose(); }, iterations);
        push(row('advkit pgd', ours.ms, ours.peakRssMb, plain.ms));
        if (batch === 128) {
          const f = await measure('fgsm', async () => { const r = await fgsm(model, x, y, { eps: EPS }); r.adversarial.dispose(); }, iterations);
          push({ ...row('advkit fgsm (1 step)', f.ms * steps, f.peakRssMb), ratio: null });
          const fwd = await measure('forward', async () => { const p = tf.tidy(() => tf.argMax(model.logits(x), 1)); await p.data(); p.dispose(); }, iterations);
          push({ ...row('evaluation (forward, images/s)', fwd.ms * steps, fwd.peakRssMb), ratio: null });
          if (backend === 'wasm') plain128.set(arch, plain.ms / steps);
          await trainingRows(net, x, y, backend, (loop, ms, peak, base) => push(row(loop, ms * steps, peak, base === undefined ? undefined : base * steps)));
        }
        x.dispose();
      }
      if (backend !== 'cpu' && options.workerScaling !== false) await workerScaling(net, arch, backend, steps, push, plain128.get(arch));
      net.dispose();
    }
  }
  return rows;
}

/**
 * Training steps at one batch: the plain loop (optimizer.minimize of the loss of model.apply)
 * on the baseline kernels and on advkit's, then advkit's trainingStep in this process (XNNPACK on ADVKIT_WASM_THREADS threads) and as two
 * shards on two worker threads; natural and adversarial (FGSM with random start). `report`
 * gets ms per step and the baseline's ms per step.
 */
async function trainingRows(net: tf.LayersModel, x: tf.Tensor4D, y: Int32Array, backend: BackendName, report: (loop: string, ms: number, peakRssMb: number, base?: number) => void): Promise<void> {
  const model = fromLayersModel(net);
  const labels = tf.tensor1d(y, 'int32');
  const oneHot = tf.oneHot(labels, 10);
  const opt = tf.train.adam(1e-4);
  const plainStep = async (inputs: tf.Tensor4D) => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(oneHot, net.apply(inputs, { training: true }) as tf.Tensor) as tf.Scalar, true);
    await loss!.data();
    loss!.dispose();
  };
  const plainAdvStep = async () => {
    const r = await fgsm(model, x, y, { eps: EPS, randomStart: true, seed: 2 });
    await plainStep(r.adversarial);
    r.adversarial.dispose();
  };
  const adversarial = { method: 'fgsm-rs' as const, eps: EPS, steps: 1, beta: 0, rampEpochs: 0 };
  const wasm = backend === 'wasm';
  if (wasm) setWasmKernelMode('baseline');
  const base = await measure('train-baseline', () => plainStep(x), TRAIN_ITERATIONS);
  const advBase = await measure('adv-train-baseline', plainAdvStep, TRAIN_ITERATIONS);
  if (wasm) setWasmKernelMode('advkit');
  const tag = wasm ? ' (baseline kernels)' : '';
  report(`natural training step, plain loop${tag}`, base.ms, base.peakRssMb, base.ms);
  report(`adversarial training step (FGSM-RS), plain loop${tag}`, advBase.ms, advBase.peakRssMb, advBase.ms);
  if (wasm) {
    const k = await measure('train-kernels', () => plainStep(x), TRAIN_ITERATIONS);
    report('natural training step, plain loop (advkit kernels)', k.ms, k.peakRssMb, base.ms);
  }
  const one = await measure('train-advkit', async () => { await trainingStep(net, opt, x, labels, { numClasses: 10 }); }, TRAIN_ITERATIONS);
  report('advkit trainingStep, natural, this process', one.ms, one.peakRssMb, base.ms);
  const advOne = await measure('adv-train-advkit', async () => { await trainingStep(net, opt, x, labels, { numClasses: 10, adversarial, seed: 2 }); }, TRAIN_ITERATIONS);
  report('advkit trainingStep, FGSM-RS, this process', advOne.ms, advOne.peakRssMb, advBase.ms);
  if (backend !== 'cpu') {
    const pool = await TrainPool.create(net, { workers: 2, backend, inputShape: [28, 28, 1], numClasses: 10 });
    try {
      const two = await measure('train-pool', async () => { await trainingStep(net, opt, x, labels, { numClasses: 10, shards: 2, pool }); }, TRAIN_ITERATIONS);
      report('advkit trainingStep, natural, 2 shards on 2 worker threads', two.ms, two.peakRssMb, base.ms);
      const advTwo = await measure('adv-train-pool', async () => { await trainingStep(net, opt, x, labels, { numClasses: 10, shards: 2, pool, adversarial, seed: 2 }); }, TRAIN_ITERATIONS);
      report('advkit trainingStep, FGSM-RS, 2 shards on 2 worker threads', advTwo.ms, advTwo.peakRssMb, advBase.ms);
    } finally {
      await pool.close();
    }
  }
  tf.dispose([labels, oneHot]);
  opt.dispose();
}

/**
 * A data-set PGD attack (512 images, batch 128) on 1 and 2 worker threads. The ratio is over the
 * plain baseline PGD loop at batch 128 (`plainMsPerStep`); the label gives the scaling over 1 thread.
 */
async function workerScaling(net: tf.LayersModel, arch: string, backend: BackendName, steps: number, push: (r: BenchRow) => void, plainMsPerStep?: number): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-bench-'));
  await saveLayersModel(net, dir);
  const { classifier } = await loadClassifier(dir);
  const rng = new Rng(5);
  const n = 512;
  const images = Float32Array.from({ length: n * 784 }, () => rng.next());
  const ds = makeDataset('bench', images, Int32Array.from({ length: n }, (_, i) => i % 10), [28, 28, 1], Array.from({ length: 10 }, (_, i) => String(i)));
  const runOnce = async (pool?: AttackPool) => {
    for await (const b of attackDataset(pgd, classifier, ds, { eps: EPS, steps, seed: 1 }, { batchSize: 128, pool })) tf.dispose([b.x, b.result.adversarial]);
  };
  let oneThread: number | undefined;
  for (const workers of [1, 2]) {
    const pool = await AttackPool.create(dir, { workers, backend });
    try {
      const m = await measure(`workers-${workers}`, () => runOnce(pool), 3);
      oneThread ??= m.ms;
      const imageStepsPerSecond = (n * steps) / (m.ms / 1000);
      const scaling = workers > 1 ? `, ${(oneThread / m.ms).toFixed(2)}x over 1 thread` : '';
      push({
        backend, model: arch, loop: `data-set PGD, ${workers} worker thread${workers > 1 ? 's' : ''}${scaling}`, batch: 128, imageStepsPerSecond, msPerStep: m.ms / steps,
        ratio: plainMsPerStep === undefined ? null : imageStepsPerSecond / (128 / (plainMsPerStep / 1000)), peakRssMb: m.peakRssMb,
      });
    } finally {
      await pool.close();
    }
  }
  await fsp.rm(dir, { recursive: true, force: true });
}

export function renderBenchTable(rows: BenchRow[]): string {
  const header = ['backend', 'model', 'loop', 'batch', 'image-steps/s', 'ms/step', 'ratio', 'peak RSS MB'];
  const body = rows.map((r) => [r.backend, r.model, r.loop, String(r.batch), r.imageStepsPerSecond.toFixed(0), r.msPerStep.toFixed(2), r.ratio === null ? '' : `${r.ratio.toFixed(2)}x`, r.peakRssMb.toFixed(0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...body.map(fmt)].join('\n') + '\n';
}
