import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ABSTAIN, betaQuantile, certify, clopperPearsonLower, incompleteBeta, normalQuantile, smoothedPredict } from '../../src/defenses/smoothing.js';
import { fromFunction } from '../../src/models/classifier.js';
import { useBackend } from '../helpers.js';

/** P(X >= k) for X ~ Bin(n, p), by direct summation in log space. */
function upperTail(k: number, n: number, p: number): number {
  let lnC = 0;
  let sum = 0;
  for (let i = 0; i <= n; i++) {
    if (i > 0) lnC += Math.log((n - i + 1) / i);
    if (i >= k) sum += Math.exp(lnC + i * Math.log(p) + (n - i) * Math.log(1 - p));
  }
  return sum;
}

describe('statistics for certification', () => {
  it('the incomplete beta and its quantile have their closed forms', () => {
    expect(incompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(incompleteBeta(0.3, 2, 1)).toBeCloseTo(0.09, 12);
    expect(betaQuantile(0.25, 1, 3)).toBeCloseTo(1 - Math.pow(0.75, 1 / 3), 9);
  });

  it('the Clopper–Pearson lower bound is where the binomial upper tail equals alpha', () => {
    for (const [k, n] of [[50, 100], [97, 100], [990, 1000], [1, 20]] as const) {
      const p = clopperPearsonLower(k, n, 0.05);
      expect(upperTail(k, n, p)).toBeCloseTo(0.05, 6);
    }
    expect(clopperPearsonLower(100, 100, 0.001)).toBeCloseTo(Math.pow(0.001, 1 / 100), 9);
  });

  it('the normal quantile matches known values', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 6);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306, 6);
  });
});

describe('randomized smoothing of a linear classifier (closed-form radius)', () => {
  // Two classes: class 1 iff w·x + b > 0; the smoothed classifier's exact radius is the distance
  // |w·x + b| / ‖w‖ to the decision boundary.
  const w = [0.6, -0.8, 0, 0];
  const b = -0.1;
  const make = () => fromFunction((x) => {
    const s = tf.add(tf.matMul(tf.reshape(x, [x.shape[0], 4]), tf.tensor2d(w, [4, 1])), b);
    return tf.concat([tf.zerosLike(s), s], 1) as tf.Tensor2D;
  }, { numClasses: 2, inputShape: [1, 1, 4], bounds: [-10, 10] });

  it('certify returns the right class and a radius within 10% below the true distance', async () => {
    await useBackend('wasm');
    const model = make();
    const x = tf.tensor4d([0.8, 0, 0.3, 0.3], [1, 1, 1, 4]);
    const margin = 0.6 * 0.8 + b; // ‖w‖ = 1
    const cert = await certify(model, x, { sigma: 0.5, n0: 100, n: 20_000, alpha: 0.001, seed: 1 });
    expect(cert.prediction).toBe(1);
    expect(cert.radius).toBeLessThanOrEqual(margin);
    expect(cert.radius).toBeGreaterThan(0.9 * margin);
  });

  it('predict abstains on the decision boundary and answers far from it', async () => {
    await useBackend('wasm');
    const model = make();
    const onBoundary = tf.tensor4d([1 / 6, 0, 0, 0], [1, 1, 1, 4]);
    expect(await smoothedPredict(model, onBoundary, { sigma: 0.5, n: 1000, alpha: 0.001, seed: 2 })).toBe(ABSTAIN);
    const far = tf.tensor4d([-2, 2, 0, 0], [1, 1, 1, 4]);
    expect(await smoothedPredict(model, far, { sigma: 0.5, n: 1000, alpha: 0.001, seed: 2 })).toBe(0);
  });

  it('rejects n too small for the confidence, sigma <= 0, and batches of images', async () => {
    await useBackend('wasm');
    const model = make();
    const x = tf.zeros([1, 1, 1, 4]) as tf.Tensor4D;
    await expect(certify(model, x, { sigma: 0.25, n: 5, alpha: 0.001 })).rejects.toThrow(/n = 5 samples can never certify at alpha = 0.001 .* use n >= 11/);
    await expect(certify(model, x, { sigma: 0, n: 100 })).rejects.toThrow(/sigma must be > 0, but got 0/);
    await expect(certify(model, tf.zeros([2, 1, 1, 4]) as tf.Tensor4D, { sigma: 0.25 })).rejects.toThrow(/one image \[1, H, W, C\]/);
  });
});

describe('advkit certify', () => {
  it('reports certified accuracy per radius, and rejects an n too small for alpha with exit 2', async () => {
    const { promises: fsp } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { buildArchitecture } = await import('../../src/models/architectures.js');
    const { saveLayersModel } = await import('../../src/models/io.js');
    const { advkit } = await import('../cli/run.js');
    await useBackend('wasm');
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-certify-'));
    const net = buildArchitecture('mlp', { seed: 1 });
    await saveLayersModel(net, dir);
    net.dispose();
    const r = advkit(['certify', '--model', dir, '--data', 'mnist', '--sigma', '0.25', '--n', '200', '--n0', '20', '--alpha', '0.01', '--limit', '3', '--radii', '0,0.5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.examples).toBe(3);
    expect(out.certified.map((c: { radius: number }) => c.radius)).toEqual([0, 0.5]);
    expect(out.certified[1].certifiedAccuracy).toBeLessThanOrEqual(out.certified[0].certifiedAccuracy);
    const bad = advkit(['certify', '--model', dir, '--data', 'mnist', '--sigma', '0.25', '--n', '5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/5 samples can never certify at --alpha 0.001; use --n 11 or more/);
    const sigma = advkit(['certify', '--model', dir, '--data', 'mnist', '--sigma', '0']);
    expect(sigma.code).toBe(2);
    expect(sigma.stderr).toMatch(/--sigma <s>.*must be > 0, got 0/);
    const noise = advkit(['eval', '--model', dir, '--data', 'mnist', '--eps', '0.1', '--defense', 'noise:0']);
    expect(noise.code).toBe(2);
    expect(noise.stderr).toMatch(/Error in --defense: sigma must be > 0, but got 0/);
  });
});
