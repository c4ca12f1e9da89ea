/**
 * ONNX models as PyTorch users export them (torch.onnx.export, opset 13, dynamic batch; the
 * committed fixtures of tests/models/onnx/export.py): logits equal PyTorch's, input gradients
 * equal PyTorch autograd's, on wasm and cpu; attacked inside the ball; no leak.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { pgd } from '../../src/attacks/pgd.js';
import { loadClassifier, modelDigest } from '../../src/models/io.js';
import { ModelError } from '../../src/util/errors.js';
import { useBackend } from '../helpers.js';
import { againstTorch, FAMILY, FIXTURES } from './onnx_fixtures.js';

describe('ONNX models exported from PyTorch', () => {
  for (const name of FAMILY) {
    for (const backend of ['wasm', 'cpu'] as const) {
      it(`${name} on ${backend}: logits equal PyTorch's within 1e-5, the input gradient PyTorch autograd's within 1e-4, no leak`, async () => {
        const r = await againstTorch(path.join(FIXTURES, name), backend);
        expect(r.logitsError).toBeLessThanOrEqual(1e-5);
        expect(r.gradError).toBeLessThanOrEqual(1e-4);
        expect(r.kind).toBe(name === 'view_flatten' ? 'softmax-cut' : 'logits');
      });
    }
  }

  it('a directory holding model.onnx loads as the file does; PGD stays in the ball and the bounds; same seed, same bytes', async () => {
    await useBackend('wasm');
    const a = (await loadClassifier(path.join(FIXTURES, 'residual'))).classifier;
    expect(a.inputShape).toEqual([16, 16, 3]);
    expect(a.numClasses).toBe(4);
    const x = tf.tidy(() => tf.transpose(tf.randomUniform([4, 3, 16, 16], 0, 1, 'float32', 5), [0, 2, 3, 1])) as tf.Tensor4D;
    const labels = Int32Array.from(await tf.argMax(a.logits(x), 1).data());
    const run = async () => { const r = await pgd(a, x, labels, { eps: 0.05, steps: 5, seed: 3 }); const d = await r.adversarial.data(); const m = tf.tidy(() => tf.max(tf.abs(tf.sub(r.adversarial, x)))).dataSync()[0]!; r.adversarial.dispose(); return { d, m }; };
    const [one, two] = [await run(), await run()];
    expect(one.m).toBeLessThanOrEqual(0.05 + 1e-6);
    expect(Array.from(one.d)).toEqual(Array.from(two.d));
    expect(Math.min(...one.d)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...one.d)).toBeLessThanOrEqual(1);
    x.dispose();
  });

  it('weights in an external data file load as inline ones; an external path leaving the directory is refused; the digest covers the data file', async () => {
    await useBackend('wasm');
    const { onnx } = (await import('onnx-proto')).default;
    const src = path.join(FIXTURES, 'tiny_cnn');
    const m = onnx.ModelProto.decode(await fsp.readFile(path.join(src, 'model.onnx')));
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-onnx-ext-'));
    // Every initializer's bytes moved into weights.data, as torch.onnx.export does for large models.
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const t of m.graph!.initializer!) {
      const raw = Buffer.from(t.rawData!);
      t.externalData = [{ key: 'location', value: 'weights.data' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.length) }];
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.rawData = new Uint8Array(0);
      chunks.push(raw);
      offset += raw.length;
    }
    await fsp.writeFile(path.join(dir, 'weights.data'), Buffer.concat(chunks));
    await fsp.writeFile(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
    await fsp.copyFile(path.join(src, 'x.npy'), path.join(dir, 'x.npy'));
    for (const f of ['logits', 'r', 'grad']) await fsp.copyFile(path.join(src, `${f}.npy`), path.join(dir, `${f}.npy`));
    const r = await againstTorch(dir, 'wasm');
    expect(r.logitsError).toBeLessThanOrEqual(1e-5);
    expect(Object.keys((await modelDigest(dir)).files)).toEqual(['model.onnx', 'weights.data']);
    m.graph!.initializer![0]!.externalData![0]!.value = '../../etc/passwd';
    await fsp.writeFile(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
    await expect(loadClassifier(dir)).rejects.toThrow(/points outside the model directory/);
  });

  it('a model with two outputs is refused without a head, listing them, and attacked through the one named', async () => {
    await useBackend('wasm');
    const { onnx } = (await import('onnx-proto')).default;
    const m = onnx.ModelProto.decode(await fsp.readFile(path.join(FIXTURES, 'tiny_cnn', 'model.onnx')));
    const features = m.graph!.node!.find((n) => n.opType === 'Flatten')!.output![0]!;
    m.graph!.output!.push(onnx.ValueInfoProto.create({ name: features }));
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-onnx-heads-'));
    await fsp.writeFile(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(m).finish());
    await expect(loadClassifier(dir)).rejects.toThrow(new RegExp(`2 outputs \\(logits, ${features.replace(/[/]/g, '\\/')}\\); choose the one to attack with head`));
    const { classifier } = await loadClassifier(dir, { head: 'logits' });
    expect(classifier.numClasses).toBe(5);
    expect(classifier.output?.head).toBe('logits');
    const embedding = (await loadClassifier(dir, { head: features })).classifier;
    expect(embedding.numClasses).toBe(12);
  });

  it('an ONNX model has a digest over model.onnx (and advkit.json), and a truncated or foreign file is a ModelError', async () => {
    const d = await modelDigest(path.join(FIXTURES, 'tiny_cnn'));
    expect(Object.keys(d.files)).toEqual(['model.onnx']);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-onnx-'));
    const bytes = await fsp.readFile(path.join(FIXTURES, 'tiny_cnn', 'model.onnx'));
    await fsp.writeFile(path.join(dir, 'cut.onnx'), bytes.subarray(0, 100));
    await expect(loadClassifier(path.join(dir, 'cut.onnx'))).rejects.toThrow(ModelError);
    await fsp.writeFile(path.join(dir, 'text.onnx'), 'not a model at all');
    await expect(loadClassifier(path.join(dir, 'text.onnx'))).rejects.toThrow(/not an ONNX ModelProto|holds no graph/);
  });
});
