/**
 * --head, --normalize, --input-range and --resize on the commands that load a model, against
 * models in the forms real tools write (the converter's TF2 output with a signature; a
 * two-head functional Keras model) and folders of photos of another size.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { writeNpy } from '../../src/data/npy.js';
import { normalizeOption } from '../../src/cli/model_options.js';
import { IMAGENET_NORMALIZATION } from '../../src/models/classifier.js';
import { loadClassifier, saveLayersModel } from '../../src/models/io.js';
import { uniform, useBackend } from '../helpers.js';
import { converterArtifacts, writeGraphModel } from '../models/compiler_fixtures.js';
import { advkit, expectUsageError } from './run.js';

let dir: string;
let twoHead: string;
let tf2: string;
let data8: string;

beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-model-options-'));
  tf2 = path.join(dir, 'tf2-detector');
  await writeGraphModel(tf2, converterArtifacts('sigmoid', 2, 'tf2'));
  const input = tf.input({ shape: [8, 8, 3] });
  const trunk = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'trunk' }).apply(input) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(trunk) as tf.SymbolicTensor;
  const species = tf.layers.dense({ units: 3, activation: 'softmax', name: 'species' }).apply(gap) as tf.SymbolicTensor;
  const cat = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'is_cat' }).apply(gap) as tf.SymbolicTensor;
  const net = tf.model({ inputs: input, outputs: [species, cat] });
  twoHead = path.join(dir, 'two-head');
  await saveLayersModel(net, twoHead, { advkitVersion: 'test' });
  net.dispose();
  await writeNpy(path.join(dir, 'x.npy'), uniform(12 * 8 * 8 * 3, 3, 0, 1), [12, 8, 8, 3]);
  await writeNpy(path.join(dir, 'y.npy'), Int32Array.from({ length: 12 }, (_, i) => i % 2), [12]);
  data8 = `npy:${path.join(dir, 'x.npy')},${path.join(dir, 'y.npy')}`;
  // A folder of 30x20 JPEG photos in two classes, for an 8x8 model.
  for (const cls of ['cat', 'dog']) {
    await fsp.mkdir(path.join(dir, 'photos', cls), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const px = Buffer.from(uniform(30 * 20 * 3, 10 * i + cls.length, 0, 255).map(Math.round));
      await sharp(px, { raw: { width: 30, height: 20, channels: 3 } }).jpeg().toFile(path.join(dir, 'photos', cls, `${cls}_${i}.jpg`));
    }
  }
});

describe('model options on the CLI', () => {
  it('advkit inspect shows a TF2 GraphModel\'s signature keys beside their tensors', () => {
    const r = advkit(['inspect', '--model', tf2]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/inputs: images \(tensor serving_default_images:0\) \[-1,8,8,3\]/);
    expect(r.stdout).toMatch(/heads: activation_6 \(tensor Identity:0\) \[-1,1\]/);
    expect(r.stdout).toMatch(/logits: the model ends in one sigmoid unit/);
    const j = JSON.parse(advkit(['inspect', '--model', tf2, '--json']).stdout);
    expect(j.heads).toEqual([{ name: 'activation_6', tensor: 'Identity:0', shape: [-1, 1], attacked: true }]);
    expect(j.fallbacks).toBe(0);
  });

  it('a multi-head model without --head exits 2 with one line listing its heads; --head attacks one and the report and run.json record it', async () => {
    expectUsageError(['eval', '--model', twoHead, '--data', data8, '--attacks', 'fgsm', '--eps', '0.1'], /2 outputs \(species \[-1,3\], is_cat \[-1,1\]\); choose the one to attack with head \(--head NAME\)/);
    expectUsageError(['attack', '--model', twoHead, '--data', data8, '--eps', '0.1', '--head', 'tail', '--out', path.join(dir, 'x')], /head "tail" is not an output of the model; its outputs are species \[-1,3\], is_cat \[-1,1\]/);
    const ev = advkit(['eval', '--model', twoHead, '--head', 'is_cat', '--data', data8, '--attacks', 'fgsm', '--eps', '0.1', '--no-checks', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stderr).toMatch(/attacking head 'is_cat'/);
    const { report } = JSON.parse(ev.stdout);
    expect(report.model.output).toMatchObject({ kind: 'sigmoid-binary', head: 'is_cat' });
    expect(report.model.numClasses).toBe(2);
    const out = path.join(dir, 'atk-head');
    const at = advkit(['attack', '--model', twoHead, '--head', 'species', '--data', data8, '--eps', '0.1', '--steps', '2', '--out', out, '--workers', '2', '--batch-size', '4']);
    expect(at.code, at.stderr).toBe(0);
    const run = JSON.parse(await fsp.readFile(path.join(out, 'run.json'), 'utf8'));
    expect(run.config.classifier).toEqual({ head: 'species' });
  });

  it('--normalize imagenet and --input-range -1,1 give the logits of the library options; a report shows them', async () => {
    expect(normalizeOption('imagenet')).toEqual({ mean: [...IMAGENET_NORMALIZATION.mean as number[]], std: [...IMAGENET_NORMALIZATION.std as number[]] });
    expect(normalizeOption('0.5,0.25')).toEqual({ mean: 0.5, std: 0.25 });
    expect(normalizeOption('0.1,0.2,0.3/0.4,0.5,0.6')).toEqual({ mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] });
    expect(normalizeOption('0.1,0.2,0.3,0.4,0.5,0.6')).toEqual({ mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] });
    const r = advkit(['eval', '--model', twoHead, '--head', 'species', '--normalize', 'imagenet', '--input-range', '-1,1', '--data', data8, '--attacks', 'fgsm', '--eps', '0', '--no-checks', '--json', '--out', path.join(dir, 'prep-report')]);
    expect(r.code, r.stderr).toBe(0);
    const { report } = JSON.parse(r.stdout);
    expect(report.model.preprocessing).toEqual({ inputRange: [-1, 1], normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } });
    expect(await fsp.readFile(path.join(dir, 'prep-report', 'report.md'), 'utf8')).toContain('**Preprocessing.**');
    // The same clean accuracy as the library's classifier with those options.
    const { classifier } = await loadClassifier(twoHead, { head: 'species', inputRange: [-1, 1], normalization: IMAGENET_NORMALIZATION });
    const x = tf.tensor4d(uniform(12 * 8 * 8 * 3, 3, 0, 1), [12, 8, 8, 3]);
    const pred = Array.from(await tf.argMax(classifier.logits(x), 1).data());
    const acc = pred.filter((p, i) => p === i % 2).length / 12;
    expect(report.cleanAccuracy).toBeCloseTo(acc, 10);
    x.dispose();
    expectUsageError(['eval', '--model', twoHead, '--data', data8, '--eps', '0.1', '--normalize', 'imagenet,0.5'], /--normalize.*must be imagenet, MEAN,STD/);
    expectUsageError(['eval', '--model', twoHead, '--data', data8, '--eps', '0.1', '--input-range', '1,-1'], /--input-range.*must be lo,hi with lo < hi/);
  });

  it('an image folder of 30x20 photos reaches an 8x8 model: fit by default, crop on request, none refused; the log says what was done', () => {
    const folder = `folder:${path.join(dir, 'photos')}`;
    const fit = advkit(['eval', '--model', twoHead, '--head', 'is_cat', '--data', folder, '--attacks', 'fgsm', '--eps', '0.05', '--no-checks', '--json']);
    expect(fit.code, fit.stderr).toBe(0);
    expect(fit.stderr).toMatch(/6 of 6 images of folder:.* resized to 8x8 \(scaled to fit, aspect ratio not kept\) \(--resize fit\)/);
    const crop = advkit(['eval', '--model', twoHead, '--head', 'is_cat', '--data', folder, '--resize', 'crop', '--attacks', 'fgsm', '--eps', '0.05', '--no-checks', '--json']);
    expect(crop.code, crop.stderr).toBe(0);
    expect(crop.stderr).toMatch(/scaled to cover, centre-cropped/);
    expect(JSON.parse(crop.stdout).report.data.examples).toBe(6);
    expectUsageError(['eval', '--model', twoHead, '--head', 'is_cat', '--data', folder, '--resize', 'none', '--attacks', 'fgsm', '--eps', '0.05'], /the model takes inputs of shape \[8, 8, 3\] but the data .* has images of shape \[20, 30, 3\]; resize the data/);
    expectUsageError(['eval', '--model', twoHead, '--data', folder, '--resize', 'big', '--eps', '0.05'], /--resize.*is not a resize; use fit, crop, none, or H,W/);
  });

  it('npy arrays of another size are refused unless --resize asks, then resized with one log line', async () => {
    await writeNpy(path.join(dir, 'x16.npy'), uniform(4 * 16 * 16, 5, 0, 1), [4, 16, 16, 1]);
    await writeNpy(path.join(dir, 'y16.npy'), Int32Array.from([0, 1, 0, 1]), [4]);
    const data = `npy:${path.join(dir, 'x16.npy')},${path.join(dir, 'y16.npy')}`;
    expectUsageError(['eval', '--model', twoHead, '--head', 'is_cat', '--data', data, '--attacks', 'fgsm', '--eps', '0.05'], /has images of shape \[16, 16, 1\]; resize the data \(--resize fit or --resize crop/);
    const r = advkit(['eval', '--model', twoHead, '--head', 'is_cat', '--data', data, '--resize', 'fit', '--attacks', 'fgsm', '--eps', '0.05', '--no-checks', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/4 images of npy:.* resized from 16x16 to 8x8 \(scaled to fit, aspect ratio not kept\) and converted from greyscale to RGB \(--resize fit\)/);
  });
});
