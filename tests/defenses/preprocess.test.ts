import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { pgd } from '../../src/attacks/pgd.js';
import { loadMnist, take } from '../../src/data/index.js';
import { bitDepth, defend, gaussianNoise, jpeg, medianSmoothing, tvMinimization, withGradient } from '../../src/defenses/preprocess.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromLayersModel, type Classifier } from '../../src/models/classifier.js';
import { trainClassifier } from '../../src/defenses/train.js';
import { uniform, useBackend } from '../helpers.js';

let model: Classifier;
const test = take(loadMnist('test'), 64);
beforeAll(async () => {
  await useBackend('wasm');
  const net = buildArchitecture('mnist-cnn', { seed: 2 });
  await trainClassifier(net, take(loadMnist('train'), 2000), { epochs: 1, seed: 2, shift: 0 });
  model = fromLayersModel(net);
});

describe('preprocessors', () => {
  it('bit depth rounds to 2^bits - 1 levels', async () => {
    const x = tf.tensor4d([0, 0.1, 0.5, 0.74, 1], [1, 1, 5, 1]);
    expect(Array.from(await bitDepth(2).apply(x).data()).map((v) => Math.round(v * 3))).toEqual([0, 0, 2, 2, 3]);
  });

  it('median smoothing takes the median of each k x k window (reflected edges)', async () => {
    const vals = uniform(5 * 6, 3, 0, 1);
    const x = tf.tensor4d(vals, [1, 5, 6, 1]);
    const out = await medianSmoothing(3).apply(x).data();
    const at = (r: number, c: number) => vals[Math.abs(r >= 5 ? 8 - r : r) * 6 + Math.abs(c >= 6 ? 10 - c : c)]!;
    for (let r = 0; r < 5; r++) for (let c = 0; c < 6; c++) {
      const win: number[] = [];
      for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) win.push(at(r + dr, c + dc));
      win.sort((a, b) => a - b);
      expect(out[r * 6 + c]).toBeCloseTo(win[4]!, 6);
    }
  });

  it('JPEG keeps images close at quality 100 and distorts them more at quality 10', async () => {
    const x = tf.tensor4d(test.images.slice(0, 2 * 784), [2, 28, 28, 1]);
    const err = async (q: number) => (await tf.max(tf.abs(tf.sub(jpeg(q).apply(x), x))).data())[0]!;
    const hi = await err(100);
    expect(hi).toBeLessThan(0.06);
    expect(await err(10)).toBeGreaterThan(hi * 2);
    const rgb = tf.tensor4d(uniform(2 * 8 * 8 * 3, 9, 0, 1), [2, 8, 8, 3]);
    expect(jpeg(90).apply(rgb).shape).toEqual([2, 8, 8, 3]);
  });

  it("JPEG matches sharp's libjpeg round trip to a fraction of a grey level on average", async () => {
    const { default: sharp } = await import('sharp');
    const n = 10;
    for (const q of [50, 75, 95]) {
      const ours = await jpeg(q).apply(tf.tensor4d(test.images.slice(0, n * 784), [n, 28, 28, 1])).data();
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const raw = Buffer.from(Array.from(test.images.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255)));
        const encoded = await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).jpeg({ quality: q, chromaSubsampling: '4:4:4' }).toBuffer();
        const { data } = await sharp(encoded).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
        for (let k = 0; k < 784; k++) sum += Math.abs(data[k]! - Math.round(ours[i * 784 + k]! * 255));
      }
      expect(sum / (n * 784)).toBeLessThan(0.5);
    }
    // Colour goes through JFIF YCbCr with 4:4:4 chroma, as sharp writes it when asked.
    const [w, h] = [32, 24];
    const rgb = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgb.set([(x * 8) % 256, (y * 10) % 256, ((x + y) * 5) % 256], (y * w + x) * 3);
    const ours = await jpeg(75).apply(tf.tensor4d(Float32Array.from(rgb, (v) => v / 255), [1, h, w, 3])).data();
    const encoded = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 75, chromaSubsampling: '4:4:4' }).toBuffer();
    const { data } = await sharp(encoded).raw().toBuffer({ resolveWithObject: true });
    let sum = 0;
    for (let k = 0; k < data.length; k++) sum += Math.abs(data[k]! - Math.round(ours[k]! * 255));
    expect(sum / data.length).toBeLessThan(0.5);
  });

  it('TV minimization keeps constant images and lowers the total variation of noisy ones', async () => {
    const tv = (t: tf.Tensor4D) => tf.tidy(() => tf.add(tf.sum(tf.abs(tf.sub(tf.slice(t, [0, 1, 0, 0], [-1, 27, -1, -1]), tf.slice(t, [0, 0, 0, 0], [-1, 27, -1, -1])))), tf.sum(tf.abs(tf.sub(tf.slice(t, [0, 0, 1, 0], [-1, -1, 27, -1]), tf.slice(t, [0, 0, 0, 0], [-1, -1, 27, -1]))))).dataSync()[0]!);
    const flat = tf.fill([1, 28, 28, 1], 0.4) as tf.Tensor4D;
    expect(Array.from(await tvMinimization(0.1).apply(flat).data()).every((v) => Math.abs(v - 0.4) < 1e-5)).toBe(true);
    const noisy = tf.clipByValue(tf.add(tf.tensor4d(test.images.slice(0, 784), [1, 28, 28, 1]), tf.randomNormal([1, 28, 28, 1], 0, 0.2, 'float32', 3)), 0, 1) as tf.Tensor4D;
    const out = tvMinimization(0.1).apply(noisy);
    expect(tv(out)).toBeLessThan(0.7 * tv(noisy));
    const vals = await out.data();
    expect(vals.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it('rejects even median windows, sigma <= 0 and bad bit depths with the value', () => {
    expect(() => medianSmoothing(4)).toThrow(/k must be odd .* but got 4/);
    expect(() => gaussianNoise(0)).toThrow(/sigma must be > 0, but got 0/);
    expect(() => bitDepth(0)).toThrow(/bits must be >= 1, but got 0/);
    expect(() => jpeg(0)).toThrow(/quality must be >= 1, but got 0/);
    expect(() => jpeg(101)).toThrow(/quality must be <= 100, but got 101/);
    expect(() => defend(model, [withGradient(medianSmoothing(3), 'exact')])).toThrow(/median\(3\) has no exact gradient in TensorFlow.js/);
  });
});

describe('defend', () => {
  it('BPDA passes the gradient at the preprocessed point straight through', async () => {
    const d = defend(model, [bitDepth(3)]);
    const x = tf.tensor4d(test.images.slice(0, 2 * 784), [2, 28, 28, 1]);
    const r = tf.tensor2d(uniform(20, 4), [2, 10]);
    const g = await tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(d.logits(xx as tf.Tensor4D), r)))(x).data();
    const px = bitDepth(3).apply(x);
    const ref = await tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(model.logits(xx as tf.Tensor4D), r)))(px).data();
    expect(Array.from(g)).toEqual(Array.from(ref));
    expect(d.describe()).toBe('bit-depth(3): BPDA (identity)');
  });

  it('an attack that differentiates the rounding sees zero gradients; BPDA-PGD breaks the defense like the undefended model', async () => {
    const x = tf.tensor4d(test.images, [64, 28, 28, 1]);
    const robust = async (m: Classifier) => {
      const r = await pgd(m, x, test.labels, { eps: 0.3, steps: 10, seed: 1 });
      r.adversarial.dispose();
      return Array.from(r.predictions).filter((p, i) => p === test.labels[i]).length / 64;
    };
    const honest = await robust(defend(model, [bitDepth(4)]));
    const naive = await robust(defend(model, [withGradient(bitDepth(4), 'exact')]));
    expect(naive).toBeGreaterThan(honest + 0.3);
    expect(honest).toBeLessThanOrEqual(0.1);
    const med = await robust(defend(model, [medianSmoothing(3)]));
    expect(med).toBeLessThanOrEqual(0.2);
  });

  it('a randomized preprocessor makes the classifier randomized and averages logits over EOT draws', async () => {
    const d = defend(model, [gaussianNoise(0.2, 1)], { eot: 4 });
    expect(d.randomized).toBe(true);
    expect(d.describe()).toMatch(/gaussian-noise\(0.2\): exact gradient; EOT over 4 draws/);
    const x = tf.tensor4d(test.images.slice(0, 784), [1, 28, 28, 1]);
    // Randomized: EOT's draws differ, so do seeds, and the average is not any one draw.
    const noise = gaussianNoise(0.2, 1);
    const [n0, n1] = [noise.apply(x, 0), noise.apply(x, 1)];
    expect(Array.from(await n0.data())).not.toEqual(Array.from(await n1.data()));
    const a = await d.logits(x).data();
    const one = await defend(model, [gaussianNoise(0.2, 1)], { eot: 1 }).logits(x).data();
    const seed2 = await defend(model, [gaussianNoise(0.2, 2)], { eot: 4 }).logits(x).data();
    expect(Array.from(a)).not.toEqual(Array.from(one));
    expect(Array.from(a)).not.toEqual(Array.from(seed2));
    tf.dispose([n0, n1]);
    const before = tf.memory().numTensors;
    const r = await pgd(d, x, [test.labels[0]!], { eps: 0.1, steps: 2 });
    r.adversarial.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('Gaussian noise gives the same bytes whatever ran before it, in whatever batch, and its sigma is the draws\' spread', async () => {
    const x = tf.tensor4d(test.images.slice(0, 3 * 784), [3, 28, 28, 1]);
    const fresh = async () => Array.from(await defend(model, [gaussianNoise(0.3, 5)], { eot: 3 }).logits(x).data());
    const first = await fresh();
    // Other calls: other instances, the same instance on other inputs, other seeds.
    const d = defend(model, [gaussianNoise(0.3, 5)], { eot: 3 });
    const other = tf.tensor4d(test.images.slice(784 * 10, 784 * 12), [2, 28, 28, 1]);
    for (let i = 0; i < 3; i++) tf.dispose([d.logits(other), defend(model, [gaussianNoise(0.3, i)]).logits(x)]);
    expect(Array.from(await d.logits(x).data())).toEqual(first);
    expect(await fresh()).toEqual(first);
    // An image's noise does not depend on its batch.
    const alone = tf.slice(x, [1, 0, 0, 0], [1, -1, -1, -1]);
    const inBatch = (await d.logits(x).data()).slice(10, 20);
    expect(Array.from(await d.logits(alone).data())).toEqual(Array.from(inBatch));
    // The noise itself: mean ~0 and std ~sigma where no clipping happens (a mid-grey image).
    const grey = tf.fill([4, 28, 28, 1], 0.5) as tf.Tensor4D;
    const noisy = gaussianNoise(0.1, 3).apply(grey);
    const v = Float32Array.from(await noisy.data(), (t) => t - 0.5);
    const mean = v.reduce((s, t) => s + t, 0) / v.length;
    const std = Math.sqrt(v.reduce((s, t) => s + (t - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(std).toBeGreaterThan(0.095);
    expect(std).toBeLessThan(0.105);
    // Identical images in one batch get the same noise (it is keyed by content): the draws are
    // a function of the image, as "the same bytes whatever ran before" requires.
    const rows = await noisy.array() as number[][][][];
    expect(rows[0]).toEqual(rows[3]);
    tf.dispose([x, other, alone, grey, noisy]);
  });
});
