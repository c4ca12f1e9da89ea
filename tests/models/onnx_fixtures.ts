/** The ONNX fixtures' comparison with PyTorch (tests/models/onnx/export.py wrote the references). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readNpy } from '../../src/data/npy.js';
import { loadClassifier } from '../../src/models/io.js';
import { relError, useBackend } from '../helpers.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'onnx', 'fixtures');
export const FAMILY = ['tiny_cnn', 'residual', 'depthwise', 'squeeze_excite', 'shuffle', 'view_flatten'];

/** Logits (probabilities for a softmax-ended model, as PyTorch returns them) and the input gradient of sum(out · r), NCHW. */
export async function againstTorch(dir: string, backend: 'wasm' | 'cpu'): Promise<{ logitsError: number; gradError: number; kind: string }> {
  await useBackend(backend);
  const { classifier } = await loadClassifier(path.join(dir, 'model.onnx'));
  const [x, ref, r, g] = await Promise.all(['x', 'logits', 'r', 'grad'].map((f) => readNpy(path.join(dir, `${f}.npy`))));
  const [n, c, h, w] = x!.shape as [number, number, number, number];
  const before = tf.memory().numTensors;
  const out = (t: tf.Tensor4D) => { const z = classifier.logits(t); return classifier.output?.kind === 'softmax-cut' ? tf.softmax(z) : z; };
  const [y, grad] = tf.tidy(() => {
    const xt = tf.transpose(tf.tensor4d(Float32Array.from(x!.data), [n, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D;
    const rt = tf.tensor(Float32Array.from(r!.data), ref!.shape);
    return [out(xt), tf.transpose(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(out(t as tf.Tensor4D), rt)) as tf.Scalar)(xt), [0, 3, 1, 2])];
  });
  const [yd, gd] = await Promise.all([y.data(), grad.data()]);
  tf.dispose([y, grad]);
  expect(tf.memory().numTensors).toBe(before);
  return { logitsError: relError(yd, Float32Array.from(ref!.data)), gradError: relError(gd, Float32Array.from(g!.data)), kind: classifier.output!.kind };
}

