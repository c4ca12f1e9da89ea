import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { writeNpy } from '../../src/data/npy.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { saveLayersModel } from '../../src/models/io.js';
import { uniform, useBackend } from '../helpers.js';
import { converterClassifier } from '../models/compiler_fixtures.js';
import { advkit } from './run.js';

let dir: string;

/** Writes a GraphModel as tensorflowjs_converter does: model.json with the manifest, one weights file. */
async function saveGraphModel(g: tf.GraphModel, out: string): Promise<void> {
  await fsp.mkdir(out, { recursive: true });
  await g.save(tf.io.withSaveHandler(async (a) => {
    await fsp.writeFile(path.join(out, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
    const json = { format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy, modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    await fsp.writeFile(path.join(out, 'model.json'), JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
  }));
}

beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-real-'));
  await saveGraphModel(await converterClassifier('sigmoid'), path.join(dir, 'detector'));
  await saveLayersModel(buildArchitecture('mini-xception', { inputShape: [16, 16, 3], numClasses: 3, softmax: true, seed: 4 }), path.join(dir, 'xception'), { advkitVersion: 'test' });
  await writeNpy(path.join(dir, 'x8.npy'), uniform(24 * 8 * 8 * 3, 1, 0, 1), [24, 8, 8, 3]);
  await writeNpy(path.join(dir, 'y2.npy'), Int32Array.from({ length: 24 }, (_, i) => i % 2), [24]);
  await writeNpy(path.join(dir, 'x16.npy'), uniform(12 * 16 * 16 * 3, 2, 0, 1), [12, 16, 16, 3]);
  await writeNpy(path.join(dir, 'y3.npy'), Int32Array.from({ length: 12 }, (_, i) => i % 3), [12]);
});

describe('real model formats through the CLI', () => {
  it('advkit eval attacks a one-sigmoid GraphModel detector through the logits [0, z] and the report says so', () => {
    const r = advkit(['eval', '--model', path.join(dir, 'detector'), '--data', `npy:${path.join(dir, 'x8.npy')},${path.join(dir, 'y2.npy')}`,
      '--attacks', 'fgsm,pgd', '--eps', '0.05', '--steps', '5', '--no-checks', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { report } = JSON.parse(r.stdout);
    expect(report.model.numClasses).toBe(2);
    expect(report.model.output.kind).toBe('sigmoid-binary');
    expect(report.model.output.detail).toMatch(/\[0, z\]/);
    const table = advkit(['eval', '--model', path.join(dir, 'detector'), '--data', `npy:${path.join(dir, 'x8.npy')},${path.join(dir, 'y2.npy')}`, '--attacks', 'fgsm', '--eps', '0.05', '--no-checks']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/logits: the model ends in one sigmoid unit/);
  });

  it('advkit attack and eval on a softmax-ended functional model use the logits before the softmax', () => {
    const data = `npy:${path.join(dir, 'x16.npy')},${path.join(dir, 'y3.npy')}`;
    const ev = advkit(['eval', '--model', path.join(dir, 'xception'), '--data', data, '--attacks', 'pgd', '--eps', '0.1', '--steps', '3', '--checks-limit', '6', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const { report } = JSON.parse(ev.stdout);
    expect(report.model.output.kind).toBe('softmax-cut');
    expect(report.model.warnings).toEqual([]);
    expect(report.checks.find((c: { id: string }) => c.id === 'probabilities').status).toBe('pass');
    const at = advkit(['attack', '--model', path.join(dir, 'xception'), '--data', data, '--attack', 'pgd', '--eps', '0.1', '--steps', '3', '--out', path.join(dir, 'atk'), '--json']);
    expect(at.code, at.stderr).toBe(0);
    expect(JSON.parse(at.stdout).robustAccuracy).toBeGreaterThanOrEqual(0);
  });

  it('advkit inspect lists the compiled nodes, the folded batch norms and the logits; --json gives the same', () => {
    const r = advkit(['inspect', '--model', path.join(dir, 'detector')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/graph-model, 7 of 7 nodes compiled/);
    expect(r.stdout).toMatch(/FusedBatchNormV3 'bn' folded into 'pw'/);
    const j = JSON.parse(advkit(['inspect', '--model', path.join(dir, 'xception'), '--json']).stdout);
    expect(j.fallbacks).toBe(0);
    expect(j.output.kind).toBe('softmax-cut');
    expect(j.nodes.some((n: { op: string; fused?: string }) => n.op === 'depthwise conv')).toBe(true);
  });
});
