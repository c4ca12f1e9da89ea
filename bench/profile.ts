/**
 * Where one step's time goes, per kernel (`tf.profile`): an attack step (PGD, one step, input
 * gradient only) or an adversarial-training step (FGSM-RS, batch norm in training mode) of one of
 * advkit's architectures on the wasm backend, one thread.
 *
 *   npm run build && node dist/bench/profile.js --arch resnet-18 --size 32 --batch 128 [--train] [--shapes]
 *
 * Prints ms per step (3 steps after a warm-up) to stderr and the kernels, heaviest first, to
 * stdout; --shapes splits each kernel by its input shapes. Kernels advkit runs inside its own
 * (a filter flip inside a conv's input gradient) count in their caller.
 */
import * as tf from '@tensorflow/tfjs';
import { pgdExamples } from '../src/attacks/pgd.js';
import { initBackend } from '../src/backend/index.js';
import { trainingStep } from '../src/defenses/train_step.js';
import { buildArchitecture } from '../src/models/architectures.js';
import { fromLayersModel } from '../src/models/classifier.js';
import { Rng } from '../src/util/random.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const arch = opt('arch', 'resnet-18');
const size = Number(opt('size', '32'));
const batch = Number(opt('batch', '128'));
for (const [name, v] of [['size', size], ['batch', batch]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`Error in --${name}: ${String(v)} is not a positive integer; pass e.g. --${name} ${name === 'size' ? 32 : 8}.\n`);
    process.exit(2);
  }
}
await initBackend('wasm');
const net = buildArchitecture(arch, { seed: 0, inputShape: [size, size, 3], ...(arch === 'resnet-18' ? { variant: 'imagenet' as const } : {}) });
const numClasses = net.outputs[0]!.shape[1] as number;
const rng = new Rng(1);
const x = tf.tensor4d(Float32Array.from({ length: batch * size * size * 3 }, () => rng.next()), [batch, size, size, 3]);
const labels = Array.from({ length: batch }, (_, i) => i % numClasses);
const y = tf.tensor1d(labels, 'int32');
const model = fromLayersModel(net);
const opt_ = tf.train.sgd(1e-4);
const step = args.includes('--train')
  ? async () => { await trainingStep(net, opt_, x, y, { numClasses, adversarial: { method: 'fgsm-rs', eps: 4 / 255, steps: 1, beta: 0, rampEpochs: 0 }, seed: 2 }); }
  : async () => { (await pgdExamples(model, x, labels, { eps: 4 / 255, steps: 1, seed: 1 })).dispose(); };
await step();
const t0 = performance.now();
for (let i = 0; i < 3; i++) await step();
process.stderr.write(`${arch} ${size}x${size} batch ${batch} ${args.includes('--train') ? 'training' : 'PGD'} step: ${((performance.now() - t0) / 3).toFixed(1)} ms\n`);
const profile = await tf.profile(step);
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of profile.kernels) {
  const key = args.includes('--shapes') ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
  const e = byKernel.get(key) ?? { ms: 0, calls: 0 };
  e.ms += k.kernelTimeMs as number;
  e.calls++;
  byKernel.set(key, e);
}
for (const [key, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40)) {
  process.stdout.write(`${e.ms.toFixed(1).padStart(9)} ms ${String(e.calls).padStart(5)}x  ${key}\n`);
}
