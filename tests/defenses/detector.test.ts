import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { calibrateThreshold, featureSqueezing } from '../../src/defenses/detector.js';
import { loadMnist, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromLayersModel } from '../../src/models/classifier.js';
import { saveLayersModel } from '../../src/models/io.js';
import { trainClassifier } from '../../src/defenses/train.js';
import { useBackend } from '../helpers.js';
import { advkit } from '../cli/run.js';

describe('feature squeezing', () => {
  it('the calibrated threshold flags at most the requested fraction of clean scores', () => {
    const scores = Array.from({ length: 100 }, (_, i) => i / 100);
    const t = calibrateThreshold(scores, 0.05);
    expect(scores.filter((s) => s > t).length).toBe(5);
    expect(scores.filter((s) => s > calibrateThreshold(scores, 0)).length).toBe(0);
  });

  it('detects PGD examples of a trained model far above its false-positive rate (library and CLI)', async () => {
    await useBackend('wasm');
    const net = buildArchitecture('mnist-cnn', { seed: 5 });
    await trainClassifier(net, take(loadMnist('train'), 2000), { epochs: 1, seed: 5, shift: 0 });
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-detect-'));
    await saveLayersModel(net, path.join(dir, 'model'));
    const set = path.join(dir, 'set');
    const a = advkit(['attack', '--model', path.join(dir, 'model'), '--data', 'mnist', '--limit', '100', '--attack', 'pgd', '--eps', '0.3', '--steps', '10', '--format', 'npy', '--out', set, '--workers', '1']);
    expect(a.code, a.stderr).toBe(0);
    const r = advkit(['detect', '--model', path.join(dir, 'model'), '--adversarial', set, '--clean', 'mnist:train', '--limit', '500', '--fpr', '0.05', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.cleanFpr).toBeLessThanOrEqual(0.05);
    expect(report.detectionRate).toBeGreaterThan(report.cleanFpr + 0.3);
    expect(report.squeezers).toEqual(['bit-depth(1)', 'median(3)']);
    // The library gives the same on clean data alone: nothing beyond the calibrated rate.
    const self = await featureSqueezing(fromLayersModel(net), take(loadMnist('train'), 300), take(loadMnist('train'), 300), { fpr: 0.1 });
    expect(self.detectionRate).toBeLessThanOrEqual(0.1);
    net.dispose();
  });

  it('rejects an even median squeezer with exit 2', () => {
    const r = advkit(['detect', '--model', 'nowhere', '--adversarial', 'mnist', '--squeezers', 'median:2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Error in --squeezers: k must be odd/);
  });
});
