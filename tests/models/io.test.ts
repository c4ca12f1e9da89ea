import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildArchitecture } from '../../src/models/architectures.js';
import { loadClassifier, loadLayersModel, saveLayersModel } from '../../src/models/io.js';
import { ModelError } from '../../src/util/errors.js';
import { uniform, useBackend } from '../helpers.js';

let dir: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-io-'));
});

async function savedModel(name: string): Promise<string> {
  const out = path.join(dir, name);
  const model = buildArchitecture('mnist-cnn', { seed: 5 });
  await saveLayersModel(model, out, { advkitVersion: 'test', architecture: 'mnist-cnn' });
  model.dispose();
  return out;
}

describe('model files', () => {
  it('a saved and reloaded model gives bit-identical logits', async () => {
    const model = buildArchitecture('mnist-cnn', { seed: 5 });
    const out = path.join(dir, 'roundtrip');
    await saveLayersModel(model, out, { advkitVersion: 'test' });
    const loaded = await loadLayersModel(out);
    const x = tf.tensor4d(uniform(3 * 784, 1, 0, 1), [3, 28, 28, 1]);
    const a = await (model.predict(x) as tf.Tensor).data();
    const b = await (loaded.predict(x) as tf.Tensor).data();
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(await fsp.readdir(out)).toEqual(['advkit.json', 'model.json', 'weights.bin']);
    tf.dispose(x);
    model.dispose();
    loaded.dispose();
  });

  it('loadClassifier reads the metadata and returns a logits classifier', async () => {
    const out = await savedModel('meta');
    const { classifier, metadata } = await loadClassifier(out);
    expect(metadata?.architecture).toBe('mnist-cnn');
    expect(classifier.numClasses).toBe(10);
    expect(classifier.inputShape).toEqual([28, 28, 1]);
    expect(classifier.warnings).toEqual([]);
  });

  it('refuses a model.json whose weight path climbs out with ../', async () => {
    const out = await savedModel('escape');
    const json = JSON.parse(await fsp.readFile(path.join(out, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../secret.bin'];
    await fsp.writeFile(path.join(dir, 'secret.bin'), new Uint8Array(16));
    await fsp.writeFile(path.join(out, 'model.json'), JSON.stringify(json));
    await expect(loadLayersModel(out)).rejects.toThrow(/points outside the model directory/);
  });

  it('refuses an absolute weight path', async () => {
    const out = await savedModel('absolute');
    const json = JSON.parse(await fsp.readFile(path.join(out, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['/etc/passwd'];
    await fsp.writeFile(path.join(out, 'model.json'), JSON.stringify(json));
    await expect(loadLayersModel(out)).rejects.toThrow(/must be a relative path/);
  });

  it('reports truncated weights with the byte counts', async () => {
    const out = await savedModel('truncated');
    const bin = await fsp.readFile(path.join(out, 'weights.bin'));
    await fsp.writeFile(path.join(out, 'weights.bin'), bin.subarray(0, 100));
    await expect(loadLayersModel(out)).rejects.toThrow(/hold 100 bytes but the manifest needs \d+; the files are truncated/);
  });

  it('reports a corrupt model.json and a missing directory as ModelError', async () => {
    const out = await savedModel('corrupt');
    await fsp.writeFile(path.join(out, 'model.json'), '{"modelTopology": ');
    await expect(loadLayersModel(out)).rejects.toBeInstanceOf(ModelError);
    await expect(loadLayersModel(out)).rejects.toThrow(/not valid JSON/);
    await expect(loadLayersModel(path.join(dir, 'nope'))).rejects.toThrow(/does not exist/);
  });

  it('loads a GraphModel directory', async () => {
    // A minimal graph: logits = MatMul(Reshape(x), W).
    const out = path.join(dir, 'graph');
    await fsp.mkdir(out, { recursive: true });
    const w = uniform(4 * 3, 2);
    const graph = {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '2' }, { size: '2' }, { size: '1' }] } } } },
        { name: 'shape', op: 'Const', attr: { dtype: { type: 'DT_INT32' }, value: { tensor: { dtype: 'DT_INT32', tensorShape: { dim: [{ size: '2' }] } } } } },
        { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '4' }, { size: '3' }] } } } } },
        { name: 'flat', op: 'Reshape', input: ['x', 'shape'], attr: { T: { type: 'DT_FLOAT' } } },
        { name: 'logits', op: 'MatMul', input: ['flat', 'w'], attr: { T: { type: 'DT_FLOAT' }, transpose_a: { b: false }, transpose_b: { b: false } } },
      ],
      versions: { producer: 1 },
    };
    const weights = new Uint8Array(8 + 48);
    new Int32Array(weights.buffer, 0, 2).set([-1, 4]);
    new Float32Array(weights.buffer, 8, 12).set(w);
    await fsp.writeFile(path.join(out, 'group1.bin'), weights);
    await fsp.writeFile(path.join(out, 'model.json'), JSON.stringify({
      format: 'graph-model', modelTopology: graph,
      weightsManifest: [{ paths: ['group1.bin'], weights: [{ name: 'shape', shape: [2], dtype: 'int32' }, { name: 'w', shape: [4, 3], dtype: 'float32' }] }],
    }));
    const { classifier } = await loadClassifier(out);
    expect(classifier.numClasses).toBe(3);
    const x = tf.tensor4d([1, 0, 0, 0], [1, 2, 2, 1]);
    const logits = classifier.logits(x);
    expect(Array.from(await logits.data())).toEqual(Array.from(w.subarray(0, 3)));
    tf.dispose([x, logits]);
  });
});
