/**
 * A robustness sweep a researcher would start from: load a model (or train a small one),
 * run PGD over a range of L∞ epsilons on held-out MNIST digits, print a table.
 *
 *   npm run build && node dist/examples/pgd_sweep.js [MODEL_DIR] [--limit N]
 *
 * Without MODEL_DIR it trains mnist-cnn for one short epoch first (a few seconds).
 */
import * as tf from '@tensorflow/tfjs';
import {
  buildArchitecture, fgsm, fromLayersModel, initBackend, loadClassifier, loadMnist, pgd, sweep, take, trainClassifier,
  type Classifier,
} from 'advkit';

const args = process.argv.slice(2);
const limitAt = args.indexOf('--limit');
const limit = limitAt >= 0 ? Number(args[limitAt + 1]) : 200;
const modelDir = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--limit');

const backend = await initBackend();
let model: Classifier;
if (modelDir) {
  model = (await loadClassifier(modelDir)).classifier;
} else {
  const net = buildArchitecture('mnist-cnn', { seed: 0 });
  await trainClassifier(net, take(loadMnist('train'), 3000), { epochs: 1, seed: 0 });
  model = fromLayersModel(net);
}

const test = take(loadMnist('test'), limit);
const x = tf.tensor4d(test.images, [limit, 28, 28, 1]);
const epsilons = [0, 0.05, 0.1, 0.15, 0.2, 0.3];
const pgdSweep = await sweep(pgd, model, x, test.labels, { epsilons, steps: 20, seed: 1 });
const fgsmSweep = await sweep(fgsm, model, x, test.labels, { epsilons });

console.log(`robust accuracy on ${limit} mnist:test digits (${backend.name} backend)`);
console.log('eps    FGSM     PGD-20');
epsilons.forEach((eps, i) => {
  const pct = (v: number) => `${(100 * v).toFixed(1).padStart(5)}%`;
  console.log(`${eps.toFixed(2)}  ${pct(fgsmSweep.robustAccuracy[i]!)}  ${pct(pgdSweep.robustAccuracy[i]!)}`);
});
tf.dispose([x, ...pgdSweep.adversarials, ...fgsmSweep.adversarials]);
