import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { writeNpy } from '../../src/data/npy.js';
import { saveLayersModel } from '../../src/models/io.js';
import { uniform } from '../helpers.js';
import { advkit } from './run.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../models/onnx/fixtures');
let dir: string;
let data: string;

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-onnx-cli-'));
  await writeNpy(path.join(dir, 'x.npy'), uniform(12 * 16 * 16 * 3, 8, 0, 1), [12, 16, 16, 3]);
  await writeNpy(path.join(dir, 'y.npy'), Int32Array.from({ length: 12 }, (_, i) => i % 4), [12]);
  data = `npy:${path.join(dir, 'x.npy')},${path.join(dir, 'y.npy')}`;
});

describe('ONNX models on the CLI', () => {
  it('advkit inspect says whether the model runs on onnxruntime, or why it stays on wasm', async () => {
    const runs = advkit(['inspect', '--model', path.join(FIXTURES, 'residual', 'model.onnx'), '--backend', 'onnxruntime']);
    expect(runs.code, runs.stderr).toBe(0);
    expect(runs.stdout).toMatch(/^onnxruntime: runs the forward and the attack gradients natively$/m);
    // UpSampling2D runs through tfjs: such a model stays on wasm.
    const up = tf.sequential({ layers: [tf.layers.upSampling2d({ inputShape: [4, 4, 1], size: [2, 2] }), tf.layers.flatten(), tf.layers.dense({ units: 3 })] });
    const upDir = path.join(dir, 'upsampling');
    await saveLayersModel(up, upDir);
    const stays = advkit(['inspect', '--model', upDir, '--backend', 'onnxruntime', '--json']);
    expect(stays.code, stays.stderr).toBe(0);
    expect(JSON.parse(stays.stdout).onnxruntime).toEqual({ runs: false, reason: expect.stringMatching(/^node '.+' \(\w+\) runs through tfjs: .+; the model runs on the tensor backend$/) });
    const wasm = advkit(['inspect', '--model', path.join(FIXTURES, 'residual', 'model.onnx'), '--backend', 'wasm', '--json']);
    expect(JSON.parse(wasm.stdout).onnxruntime).toBeNull();
  });

  it('inspect, eval and attack take --model model.onnx; the attack on 2 worker threads writes the bytes of one', async () => {
    const model = path.join(FIXTURES, 'residual', 'model.onnx');
    const inspect = advkit(['inspect', '--model', model]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toMatch(/onnx, \d+ of \d+ nodes compiled/);
    expect(inspect.stdout).toMatch(/heads: logits \[-1,4\]/);
    const ev = advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm,pgd', '--eps', '0,4/255', '--steps', '3', '--no-checks', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const { report } = JSON.parse(ev.stdout);
    expect(report.model.inputShape).toEqual([16, 16, 3]);
    expect(Object.keys(report.provenance.model.files)).toEqual(['model.onnx']);
    const one = advkit(['attack', '--model', model, '--data', data, '--eps', '0.05', '--steps', '3', '--format', 'npy', '--workers', '1', '--out', path.join(dir, 'a1')]);
    const two = advkit(['attack', '--model', model, '--data', data, '--eps', '0.05', '--steps', '3', '--format', 'npy', '--workers', '2', '--batch-size', '4', '--out', path.join(dir, 'a2')]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stderr).toMatch(/attacking on 2 worker threads/);
    expect((await fsp.readFile(path.join(dir, 'a1', 'x_adv.npy'))).equals(await fsp.readFile(path.join(dir, 'a2', 'x_adv.npy')))).toBe(true);
  });
});
