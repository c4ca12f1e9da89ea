import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mergeExampleSets, readExampleSet, writeExampleSet } from '../../src/attacks/example_set.js';
import { makeDataset } from '../../src/data/dataset.js';
import { uniform, useBackend } from '../helpers.js';
import { linearModel } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-set-'));
});

const shape: [number, number, number] = [6, 5, 3];
const data = () => makeDataset('random', uniform(23 * 90, 11, 0, 1), Int32Array.from({ length: 23 }, (_, i) => i % 4), shape, ['a', 'b', 'c', 'd']);

describe('example sets from the library', () => {
  it('writes a set and reads it back: images within the eps ball, labels and manifest in data order, no tensor leaked', async () => {
    const model = linearModel(shape, 4, 3);
    const before = tf.memory().numTensors;
    const out = path.join(dir, 'set');
    const { summary } = await writeExampleSet(model, data(), { name: 'pgd', options: { eps: 0.05, steps: 4, seed: 2 } }, { out, format: ['png', 'npy'], batchSize: 5 });
    expect(tf.memory().numTensors).toBe(before);
    expect(summary.examples).toBe(23);
    expect(summary.provenance.data.sha256).toMatch(/^[0-9a-f]{64}$/);
    const set = await readExampleSet(out);
    expect(Array.from(set.ds.labels)).toEqual(Array.from(data().labels));
    expect(set.lines.map((l) => l.index)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    const clean = data().images;
    for (let i = 0; i < clean.length; i++) expect(Math.abs(set.ds.images[i]! - clean[i]!)).toBeLessThanOrEqual(0.05 + 1e-6);
    expect(set.success.filter(Boolean).length / 23).toBeCloseTo(summary.successRate, 10);
    const run = JSON.parse(await fsp.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ schema: 'advkit.example-set', version: 1, complete: true });
  });

  it('shards written from the library merge into the unsharded set, byte for byte', async () => {
    const model = linearModel(shape, 4, 3);
    const attack = { name: 'apgd-ce' as const, options: { eps: 0.05, steps: 6, seed: 1 } };
    await writeExampleSet(model, data(), attack, { out: path.join(dir, 'whole'), format: ['npy'], batchSize: 4 });
    for (const index of [0, 1]) await writeExampleSet(model, data(), attack, { out: path.join(dir, `part${index}`), format: ['npy'], batchSize: 4, shard: { index, count: 2 } });
    await mergeExampleSets([path.join(dir, 'part1'), path.join(dir, 'part0')], path.join(dir, 'joined'));
    for (const f of ['manifest.jsonl', 'x_adv.npy', 'x.npy', 'y.npy', 'summary.json', 'run.json']) {
      expect((await fsp.readFile(path.join(dir, 'joined', f))).equals(await fsp.readFile(path.join(dir, 'whole', f))), f).toBe(true);
    }
  });

  it('refuses unknown option names, listing the known ones', async () => {
    const model = linearModel(shape, 4, 3);
    await expect(writeExampleSet(model, data(), { name: 'fgsm', options: { eps: 0.1 } }, { out: path.join(dir, 'x'), batchsize: 4 } as never)).rejects.toThrow(/Error in writeExampleSet: unknown option "batchsize"; known: out, flag, format, batchSize/);
    await expect(writeExampleSet(model, data(), { name: 'jsma' as never, options: { eps: 0.1 } }, { out: path.join(dir, 'x') })).rejects.toThrow(/attack.name must be one of fgsm/);
    await expect(readExampleSet(dir)).rejects.toThrow(/holds no manifest.jsonl; it is not an advkit example set/);
  });
});
