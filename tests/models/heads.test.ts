/**
 * Real-model coverage: GraphModels in the converter's TF2 form (a signature whose keys are not
 * node names), one head of a multi-head GraphModel or LayersModel, and the model's input
 * preprocessing (input range, normalization) as options and as advkit.json data.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { pgd } from '../../src/attacks/pgd.js';
import { AttackPool } from '../../src/attacks/pool.js';
import { makeDataset } from '../../src/data/dataset.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { renderHtml, renderMarkdown, renderTable } from '../../src/eval/render.js';
import { IMAGENET_NORMALIZATION, type Classifier } from '../../src/models/classifier.js';
import { compileModel } from '../../src/models/compiler/index.js';
import { loadClassifier, saveLayersModel } from '../../src/models/io.js';
import { ModelError } from '../../src/util/errors.js';
import { relError, uniform, useBackend } from '../helpers.js';
import { conv, converterArtifacts, graphArtifacts, strs, writeGraphModel, type ConstSpec } from './compiler_fixtures.js';

let dir: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-heads-'));
});

const images = (n: number, shape: number[], seed: number) => tf.tensor4d(uniform(n * shape[0]! * shape[1]! * shape[2]!, seed, 0, 1), [n, shape[0]!, shape[1]!, shape[2]!]);
const read = async (t: tf.Tensor) => { const d = await t.data(); t.dispose(); return Float32Array.from(d); };

/** What the classifier's logits mean in the model's own output space (softmax, sigmoid of z, or the logits). */
function asModelOutput(c: Classifier, logits: tf.Tensor2D): tf.Tensor {
  return tf.tidy(() => {
    if (c.output?.kind === 'softmax-cut') return tf.softmax(logits);
    if (c.output?.kind === 'sigmoid-binary') return tf.sigmoid(tf.slice(logits, [0, 1], [-1, 1]));
    return logits.clone();
  });
}

/** PGD on a batch through `c`: inside the ball and the bounds; returns the success mask. */
async function attacked(c: Classifier, x: tf.Tensor4D): Promise<Uint8Array> {
  const labels = await read(tf.tidy(() => tf.argMax(c.logits(x), 1)));
  const before = tf.memory().numTensors;
  const r = await pgd(c, x, Int32Array.from(labels), { eps: 0.3, steps: 10, seed: 1 });
  const delta = await read(tf.tidy(() => tf.max(tf.abs(tf.sub(r.adversarial, x)))));
  const range = await read(tf.tidy(() => tf.stack([tf.min(r.adversarial), tf.max(r.adversarial)])));
  r.adversarial.dispose();
  expect(tf.memory().numTensors).toBe(before);
  expect(delta[0]!).toBeLessThanOrEqual(0.3 + 1e-6);
  expect(range[0]!).toBeGreaterThanOrEqual(0);
  expect(range[1]!).toBeLessThanOrEqual(1);
  return r.success;
}

describe('GraphModels in the TF2 converter form (signature keys differ from node names)', () => {
  for (const head of ['softmax', 'sigmoid', 'logits', 'flatten', 'leaky'] as const) {
    it(`a ${head} head loads from disk, compiles whole, matches GraphModel.execute within 1e-5 and is attacked`, async () => {
      const artifacts = converterArtifacts(head, 3, 'tf2');
      const modelDir = path.join(dir, `tf2-${head}`);
      await writeGraphModel(modelDir, artifacts);
      const json = JSON.parse(await fsp.readFile(path.join(modelDir, 'model.json'), 'utf8'));
      // The converter's form, as the regression met it: keys that name no node.
      const key = Object.keys(json.signature.outputs)[0]!;
      expect(json.signature.outputs[key].name).toBe('Identity:0');
      expect(json.modelTopology.node.some((n: { name: string }) => n.name === key)).toBe(false);
      expect(json.modelTopology.node.filter((n: { name: string }) => n.name.startsWith('StatefulPartitionedCall/model/')).length).toBeGreaterThan(5);
      const { classifier, model } = await loadClassifier(modelDir);
      const graph = model as tf.GraphModel;
      expect(graph.outputNodes).toEqual([key]);
      expect(compileModel(graph).report.fallbacks).toBe(0);
      expect(classifier.output?.kind).toBe(head === 'softmax' ? 'softmax-cut' : head === 'sigmoid' ? 'sigmoid-binary' : 'logits');
      expect(classifier.output?.head).toBeUndefined();
      const x = images(4, [8, 8, 3], 7);
      const ours = await read(asModelOutput(classifier, classifier.logits(x)));
      const theirs = await read(graph.execute({ images: x }) as tf.Tensor);
      expect(relError(ours, theirs)).toBeLessThanOrEqual(1e-5);
      await attacked(classifier, x);
      x.dispose();
      graph.dispose();
    });
  }

  it('a signature output naming no node is refused with the key and the tensor', async () => {
    const artifacts = converterArtifacts('logits', 1, 'tf2');
    (artifacts.signature as { outputs: Record<string, { name: string }> }).outputs.dense_1!.name = 'Identity_9:0';
    const modelDir = path.join(dir, 'tf2-dangling');
    await writeGraphModel(modelDir, artifacts);
    await expect(loadClassifier(modelDir)).rejects.toThrow(/signature output 'dense_1' is tensor 'Identity_9:0', but the graph has no node 'Identity_9'/);
  });

  it('a graph whose node reads itself through a cycle is refused as a ModelError, not a stack overflow', async () => {
    const artifacts = converterArtifacts('logits', 1, 'plain');
    const nodes = (artifacts.modelTopology as { node: Array<{ name: string; input?: string[] }> }).node;
    nodes.find((n) => n.name === 'dw')!.input![0] = 'res';
    const modelDir = path.join(dir, 'cycle');
    await writeGraphModel(modelDir, artifacts);
    await expect(loadClassifier(modelDir)).rejects.toThrow(ModelError);
    await expect(loadClassifier(modelDir)).rejects.toThrow(/cycle/);
  });
});

/**
 * A face model in the converter's TF2 form: a conv trunk, global mean, then three heads (race:
 * 5-way softmax, gender: one sigmoid, age: 8-way softmax), keyed race_output, gender_output,
 * age_output and read through Identity, Identity_1, Identity_2.
 */
function faceModel(): tf.io.ModelArtifacts {
  const f = (n: number, seed: number) => uniform(n, seed, -0.5, 0.5);
  const consts: ConstSpec[] = [
    { name: 'trunk/w', shape: [3, 3, 3, 6], values: f(162, 1) }, { name: 'trunk/b', shape: [6], values: f(6, 2) },
    { name: 'axes', shape: [2], values: new Int32Array([1, 2]), dtype: 'int32' },
    { name: 'race/w', shape: [6, 5], values: f(30, 3) }, { name: 'race/b', shape: [5], values: f(5, 4) },
    { name: 'gender/w', shape: [6, 1], values: f(6, 5) }, { name: 'gender/b', shape: [1], values: f(1, 6) },
    { name: 'age/w', shape: [6, 8], values: f(48, 7) }, { name: 'age/b', shape: [8], values: f(8, 8) },
  ];
  const dense = (name: string) => ({ name: `${name}/MatMul`, op: '_FusedMatMul', input: ['gap', `${name}/w`, `${name}/b`], attr: { transpose_a: { b: false }, transpose_b: { b: false }, fused_ops: strs(['BiasAdd']), num_args: { i: '1' } } });
  const nodes = [
    conv('trunk', '_FusedConv2D', ['x', 'trunk/w', 'trunk/b'], { strides: 2, fused: ['BiasAdd', 'Relu'] }),
    { name: 'gap', op: 'Mean', input: ['trunk', 'axes'], attr: { keep_dims: { b: false } } },
    dense('race'), { name: 'race/Softmax', op: 'Softmax', input: ['race/MatMul'] },
    dense('gender'), { name: 'gender/Sigmoid', op: 'Sigmoid', input: ['gender/MatMul'] },
    dense('age'), { name: 'age/Softmax', op: 'Softmax', input: ['age/MatMul'] },
  ];
  return graphArtifacts(nodes, consts, { name: 'x', shape: [-1, 16, 16, 3] }, {
    inputKey: 'input_1', placeholder: 'input_1',
    outputs: [{ key: 'race_output', node: 'race/Softmax', units: 5 }, { key: 'gender_output', node: 'gender/Sigmoid', units: 1 }, { key: 'age_output', node: 'age/Softmax', units: 8 }],
  });
}

describe('one head of a multi-head model', () => {
  it('a three-head GraphModel without a head is refused with one line listing its heads and shapes', async () => {
    const modelDir = path.join(dir, 'face');
    await writeGraphModel(modelDir, faceModel());
    const err = await loadClassifier(modelDir).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as Error).message).toContain('race_output [-1,5], gender_output [-1,1], age_output [-1,8]');
    expect((err as Error).message).toContain('--head');
    expect((err as Error).message.split('\n')).toHaveLength(1);
    await expect(loadClassifier(modelDir, { head: 'hair_output' })).rejects.toThrow(/head "hair_output" is not an output of the model; its outputs are race_output \[-1,5\]/);
  });

  const heads = [
    { head: 'race_output', alias: 'Identity', classes: 5, kind: 'softmax-cut', tensor: 'Identity' },
    { head: 'gender_output', alias: 'Identity_1:0', classes: 2, kind: 'sigmoid-binary', tensor: 'Identity_1' },
    { head: 'age_output', alias: 'Identity_2', classes: 8, kind: 'softmax-cut', tensor: 'Identity_2' },
  ] as const;
  for (const h of heads) {
    it(`a three-head GraphModel attacked through ${h.head}: that head alone compiles, its logits give its output, the head is recorded`, async () => {
      const modelDir = path.join(dir, 'face');
      await writeGraphModel(modelDir, faceModel());
      const { classifier, model } = await loadClassifier(modelDir, { head: h.head });
      const graph = model as tf.GraphModel;
      expect(classifier.numClasses).toBe(h.classes);
      expect(classifier.output?.kind).toBe(h.kind);
      expect(classifier.output?.head).toBe(h.head);
      expect(classifier.output?.detail).toMatch(new RegExp(`^head '${h.head}'`));
      expect(classifier.source?.options).toEqual({ head: h.head });
      const report = compileModel(graph, { head: `${h.tensor}:0` }).report;
      expect(report.fallbacks).toBe(0);
      // The other heads' nodes are pruned.
      const others = heads.filter((o) => o !== h).map((o) => o.head.replace('_output', ''));
      for (const n of report.nodes) for (const o of others) expect(n.name.includes(`/${o}/`), n.name).toBe(false);
      const x = images(3, [16, 16, 3], 11);
      const ours = await read(asModelOutput(classifier, classifier.logits(x)));
      const theirs = await read(graph.execute({ input_1: x }, h.tensor) as tf.Tensor);
      expect(relError(ours, theirs)).toBeLessThanOrEqual(1e-5);
      // Any spelling of the head builds the same classifier.
      const again = await loadClassifier(modelDir, { head: h.alias });
      expect(await read(again.classifier.logits(x))).toEqual(await read(classifier.logits(x)));
      await attacked(classifier, x);
      x.dispose();
      graph.dispose();
      (again.model as tf.GraphModel).dispose();
    });
  }

  it('a worker pool built from a head-choosing classifier attacks that head, as one thread does', async () => {
    const modelDir = path.join(dir, 'face');
    await writeGraphModel(modelDir, faceModel());
    const { classifier } = await loadClassifier(modelDir, { head: 'age_output', inputRange: [-1, 1] });
    const pool = await AttackPool.create(classifier, { workers: 1 });
    try {
      const x = images(4, [16, 16, 3], 5);
      const predicted = await pool.predict(Float32Array.from(await x.data()), [4, 16, 16, 3]);
      const local = await read(tf.tidy(() => tf.argMax(classifier.logits(x), 1)));
      expect(Array.from(predicted)).toEqual(Array.from(local));
      x.dispose();
    } finally {
      await pool.close();
    }
  });

  /** A functional LayersModel with two heads: 'species' (4-way softmax) and 'is_cat' (one sigmoid). */
  function twoHeadModel(): tf.LayersModel {
    const input = tf.input({ shape: [8, 8, 3] });
    const trunk = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'trunk' }).apply(input) as tf.SymbolicTensor;
    const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(trunk) as tf.SymbolicTensor;
    const species = tf.layers.dense({ units: 4, activation: 'softmax', name: 'species' }).apply(gap) as tf.SymbolicTensor;
    const cat = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'is_cat' }).apply(gap) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: [species, cat] });
  }

  it('a two-head functional LayersModel: refused without a head, attacked through each, and a saved advkit.json head is used', async () => {
    const net = twoHeadModel();
    const modelDir = path.join(dir, 'two-head');
    await saveLayersModel(net, modelDir, { advkitVersion: 'test' });
    await expect(loadClassifier(modelDir)).rejects.toThrow(/2 outputs \(species \[-1,4\], is_cat \[-1,1\]\); choose the one to attack with head \(--head NAME\)/);
    const x = images(3, [8, 8, 3], 2);
    const outs = net.predict(x) as tf.Tensor[];
    for (const [k, head] of (['species', 'is_cat'] as const).entries()) {
      const { classifier } = await loadClassifier(modelDir, { head });
      expect(classifier.numClasses).toBe(head === 'species' ? 4 : 2);
      expect(classifier.output?.head).toBe(head);
      const ours = await read(asModelOutput(classifier, classifier.logits(x)));
      expect(relError(ours, await outs[k]!.data())).toBeLessThanOrEqual(1e-5);
      await attacked(classifier, x);
    }
    // advkit.json carries the head; an option overrides it.
    await saveLayersModel(net, modelDir, { advkitVersion: 'test', head: 'is_cat' });
    expect((await loadClassifier(modelDir)).classifier.output?.head).toBe('is_cat');
    expect((await loadClassifier(modelDir, { head: 'species' })).classifier.output?.head).toBe('species');
    tf.dispose([x, ...outs]);
    net.dispose();
  });
});

describe("the model's preprocessing as data", () => {
  it('inputRange [-1, 1] equals normalization mean 0.5 std 0.5; imagenet equals its statistics; advkit.json round-trips both; a report shows them', async () => {
    const input = tf.input({ shape: [6, 6, 3] });
    const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    const net = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, name: 'logits' }).apply(flat) as tf.SymbolicTensor });
    const modelDir = path.join(dir, 'prep');
    await saveLayersModel(net, modelDir, { advkitVersion: 'test' });
    const x = images(5, [6, 6, 3], 9);
    const logits = async (opts: Parameters<typeof loadClassifier>[1]) => read((await loadClassifier(modelDir, opts)).classifier.logits(x));
    const byRange = await logits({ inputRange: [-1, 1] });
    const byNorm = await logits({ normalization: { mean: 0.5, std: 0.5 } });
    expect(relError(byRange, byNorm)).toBeLessThanOrEqual(1e-6);
    // The model itself, fed 2x - 1 and (x - mean) / std by hand.
    const direct = await read(net.predict(tf.tidy(() => tf.sub(tf.mul(x, 2), 1))) as tf.Tensor);
    expect(relError(byRange, direct)).toBeLessThanOrEqual(1e-6);
    const imagenet = await logits({ normalization: IMAGENET_NORMALIZATION });
    const byHand = await read(net.predict(tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d([0.485, 0.456, 0.406])), tf.tensor1d([0.229, 0.224, 0.225])))) as tf.Tensor);
    expect(relError(imagenet, byHand)).toBeLessThanOrEqual(1e-6);
    // Range then normalization (a Caffe-style model on [0, 255] with per-channel means).
    const caffe = await logits({ inputRange: [0, 255], normalization: { mean: [104, 117, 123], std: 1 } });
    const caffeByHand = await read(net.predict(tf.tidy(() => tf.sub(tf.mul(x, 255), tf.tensor1d([104, 117, 123])))) as tf.Tensor);
    expect(relError(caffe, caffeByHand)).toBeLessThanOrEqual(1e-5);
    // advkit.json carries it.
    await saveLayersModel(net, modelDir, { advkitVersion: 'test', inputRange: [-1, 1], normalization: IMAGENET_NORMALIZATION });
    const saved = await loadClassifier(modelDir);
    expect(saved.classifier.preprocessing).toEqual({ inputRange: [-1, 1], normalization: IMAGENET_NORMALIZATION });
    expect(await read(saved.classifier.logits(x))).toEqual(await logits({ inputRange: [-1, 1], normalization: IMAGENET_NORMALIZATION }));
    // A report shows it.
    const data = makeDataset('prep', Float32Array.from(await x.data()), Int32Array.from([0, 1, 2, 0, 1]), [6, 6, 3], ['a', 'b', 'c']);
    const { report } = await evaluateRobustness(saved.classifier, data, { attacks: [{ name: 'fgsm' }], epsilons: [0.01], checks: false });
    expect(report.model.preprocessing).toEqual({ inputRange: [-1, 1], normalization: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } });
    // Markdown escapes brackets (no link can be injected); unescaped, it reads as the table does.
    expect(renderMarkdown(report).replace(/\\([[\]|*_`#])/g, '$1')).toContain('**Preprocessing.** inputs pixels in [0, 1] mapped onto [-1, 1], then normalized as (x - mean) / std with mean 0.485,0.456,0.406 and std 0.229,0.224,0.225');
    expect(renderTable(report)).toContain('(preprocessing: inputs pixels in [0, 1] mapped onto [-1, 1]');
    // The evaluation's label is said once (it was 'Partial evaluation. Partial evaluation: ...').
    const html = await renderHtml(report);
    expect(html).toMatch(/<b>Partial evaluation\.<\/b> This run used/);
    expect(html).not.toMatch(/Partial evaluation\.<\/b> Partial evaluation/);
    expect(html).toContain('<h2>Perturbations of successful examples</h2>');
    tf.dispose(x);
    net.dispose();
  });

  it('a bad input range or normalization in advkit.json is refused naming it', async () => {
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 2 })] });
    const modelDir = path.join(dir, 'bad-prep');
    await saveLayersModel(net, modelDir, { advkitVersion: 'test', inputRange: [1, -1] as never });
    await expect(loadClassifier(modelDir)).rejects.toThrow(/Error in advkit.json of .*bad-prep: inputRange must be \[lo, hi\] with finite lo < hi, but got \[1,-1\]/);
    await saveLayersModel(net, modelDir, { advkitVersion: 'test', normalization: { mean: 'half', std: 1 } as never });
    await expect(loadClassifier(modelDir)).rejects.toThrow(/Error in advkit.json of .*: normalization must be/);
    await saveLayersModel(net, modelDir, { advkitVersion: 'test', normalization: { mean: [0.5, 0.5], std: 1 } });
    await expect(loadClassifier(modelDir)).rejects.toThrow(/normalization.mean must have 1 or 1 values/);
    net.dispose();
  });
});
