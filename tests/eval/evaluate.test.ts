import { beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import * as tf from '@tensorflow/tfjs';
import { loadMnist, take } from '../../src/data/index.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { completeness, presetAttacks } from '../../src/eval/presets.js';
import { checkAssertions, checkBaseline, junitXml, parseAssertion } from '../../src/eval/gate.js';
import { examplesGridPng, renderHtml, renderMarkdown, renderTable } from '../../src/eval/render.js';
import { REPORT_JSON_SCHEMA, robustAtDistance, type RobustnessReport } from '../../src/eval/report.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromFunction, fromLayersModel, type Classifier } from '../../src/models/classifier.js';
import { trainClassifier } from '../../src/defenses/train.js';
import { useBackend } from '../helpers.js';

let model: Classifier;
let net: tf.LayersModel;
const data = take(loadMnist('test'), 60);

beforeAll(async () => {
  await useBackend('wasm');
  net = buildArchitecture('mnist-cnn', { seed: 1 });
  await trainClassifier(net, take(loadMnist('train'), 3000), { epochs: 2, batchSize: 32, seed: 1, shift: 0 });
  model = fromLayersModel(net);
});

const byId = (r: RobustnessReport, id: string) => r.checks.find((c) => c.id === id)!;

describe('evaluateRobustness', () => {
  let report: RobustnessReport;
  it('reports clean, per-attack and worst-case accuracy; a normal model passes every sanity check', async () => {
    const before = tf.memory().numTensors;
    const ev = await evaluateRobustness(model, data, { attacks: [{ name: 'fgsm' }, { name: 'pgd', options: { steps: 10 } }], epsilons: [0, 0.1, 0.3], seed: 1, checksLimit: 40, squareQueries: 150, keepExamples: 4 });
    expect(tf.memory().numTensors).toBe(before);
    report = ev.report;
    expect(report.results.map((r) => r.eps)).toEqual([0, 0.1, 0.3]);
    expect(report.results[0]!.worstCase.robustAccuracy).toBe(report.cleanAccuracy);
    for (let i = 1; i < 3; i++) expect(report.results[i]!.worstCase.robustAccuracy).toBeLessThanOrEqual(report.results[i - 1]!.worstCase.robustAccuracy);
    const r = report.results[2]!;
    // Cascade: the worst case is the accuracy after the last attack, and never above the first's.
    // (It may be lower still: adversarial examples found at a smaller eps count here too.)
    expect(r.worstCase.robustAccuracy).toBeLessThanOrEqual(r.attacks[1]!.robustAccuracyAfter);
    expect(r.attacks[1]!.robustAccuracyAfter).toBeLessThanOrEqual(r.attacks[0]!.robustAccuracy!);
    expect(r.attacks[1]!.attacked).toBe(Math.round(r.attacks[0]!.robustAccuracy! * 60));
    expect(r.attacks[1]!.robustAccuracy).toBeNull();
    const perClassTotal = r.worstCase.perClass.reduce((a, c) => a + c.examples, 0);
    expect(perClassTotal).toBe(60);
    expect(r.attacks[0]!.perturbation.linf.max!).toBeLessThanOrEqual(0.3 + 1e-6);
    expect(report.threatModel.catalogue.map((c) => c.id)).toEqual(['AML.T0043', 'ML01']);
    expect(report.threatModel.description).toMatch(/White-box.*L∞ ball/);
    const warnings = report.checks.filter((c) => c.status === 'warn');
    expect(warnings, JSON.stringify(warnings)).toEqual([]);
    expect(report.checks.map((c) => c.id).sort()).toEqual(['convergence', 'gradient-free', 'iterations', 'iterative-vs-single-step', 'large-eps', 'monotone', 'probabilities', 'randomized', 'zero-gradients']);
    expect(ev.examples.length).toBe(4);
  });

  it('the report validates against its JSON schema', () => {
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(REPORT_JSON_SCHEMA);
    expect(validate(JSON.parse(JSON.stringify(report))), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...report, cleanAccuracy: 1.5 })).toBe(false);
  });

  it('renders a table, Markdown, HTML with an SVG chart, and a PNG grid', async () => {
    expect(renderTable(report)).toMatch(/eps\s+FGSM\s+\+PGD\s+worst case/);
    expect(renderMarkdown(report)).toMatch(/\| eps \| FGSM \| \+PGD \| worst case \|/);
    const html = await renderHtml(report);
    expect(html).toMatch(/<svg[^>]*class="marks"/);
    expect(html).toMatch(/AML\.T0043/);
    const png = await examplesGridPng([{ index: 0, label: 1, prediction: 2, attack: 'pgd', eps: 0.3, x: data.images.slice(0, 784), adversarial: data.images.slice(784, 1568) }], [28, 28, 1], data.classNames);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('gates: assertions, baseline drops and JUnit XML', () => {
    const pgdAt = report.results[1]!.attacks[1]!.robustAccuracyAfter;
    expect(checkAssertions(report, [parseAssertion('clean>=0.5')])[0]!.passed).toBe(true);
    expect(checkAssertions(report, [parseAssertion('worst@0.1>=100%')])[0]!.passed).toBe(pgdAt >= 1);
    expect(() => parseAssertion('pgd>=0.5')).toThrow(/needs an epsilon/);
    expect(() => parseAssertion('pgd@0.3 = 0.5')).toThrow(/cannot parse/);
    expect(() => checkAssertions(report, [parseAssertion('cw@0.1>=0.5')])).toThrow(/names attack cw/);
    const worse = JSON.parse(JSON.stringify(report)) as RobustnessReport;
    worse.results[1]!.worstCase.robustAccuracy = Math.max(0, worse.results[1]!.worstCase.robustAccuracy - 0.1);
    expect(checkBaseline(worse, report, 0.02).some((g) => !g.passed)).toBe(true);
    expect(checkBaseline(report, report, 0).every((g) => g.passed)).toBe(true);
    const xml = junitXml([{ name: 'a<b', passed: false, message: 'x & y' }, { name: 'ok', passed: true, message: '' }]);
    expect(xml).toMatch(/tests="2" failures="1"/);
    expect(xml).toMatch(/name="a&lt;b"/);
  });
});

describe('presets', () => {
  let standard: RobustnessReport;
  it('standard (the default) runs AutoAttack\'s ensemble, reaches 0% at eps 0.3 on a naturally trained model, and calls itself complete', async () => {
    const before = tf.memory().numTensors;
    // (eps 0.2 and 0.3 leave Square, 5,000 queries per point, next to nothing to attack.)
    const { report } = await evaluateRobustness(model, take(data, 30), { epsilons: [0.2, 0.3], checks: false });
    expect(tf.memory().numTensors).toBe(before);
    standard = report;
    expect(report.config.preset).toBe('standard');
    expect(report.config.attacks.map((a) => a.name)).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square']);
    expect(report.evaluation).toMatchObject({ preset: 'standard', complete: true });
    expect(report.results[1]!.worstCase.robustAccuracy).toBe(0);
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(REPORT_JSON_SCHEMA);
    expect(validate(JSON.parse(JSON.stringify(report))), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the minimum-norm curve from FAB-T equals the worst case at every evaluated eps and never rises', () => {
    const m = standard.minimumNorm!;
    expect(m.attacks).toEqual(['fab-t']);
    expect(m.distances.length).toBe(30);
    for (const r of standard.results) expect(robustAtDistance(m.distances, r.eps)).toBeCloseTo(r.worstCase.robustAccuracy, 10);
    const grid = Array.from({ length: 31 }, (_, i) => i * 0.01);
    for (let i = 1; i < grid.length; i++) expect(robustAtDistance(m.distances, grid[i]!)).toBeLessThanOrEqual(robustAtDistance(m.distances, grid[i - 1]!));
    // Clean errors sit at distance 0; the median lies within the distances found.
    const wrong = Math.round((1 - standard.cleanAccuracy) * 30);
    expect(m.distances.filter((d) => d === 0).length).toBeGreaterThanOrEqual(wrong);
    expect(m.median!).toBeGreaterThan(0);
    expect(m.median!).toBeLessThan(0.25);
    expect(renderTable(standard)).toMatch(/minimum-norm \(fab-t\): median L∞ distance/);
  });

  for (const preset of ['fast', 'rand'] as const) {
    it(`${preset} reaches 0% at eps 0.3 on a naturally trained model and calls itself partial`, async () => {
      const { report } = await evaluateRobustness(model, take(data, 24), { preset, epsilons: [0.3], checks: false });
      expect(report.results[0]!.worstCase.robustAccuracy).toBe(0);
      expect(report.evaluation!.complete).toBe(false);
      expect(report.evaluation!.note).toMatch(/Partial evaluation/);
    });
  }

  it('a hand-picked attack list is a partial evaluation; attacks and preset together are refused', async () => {
    const { report } = await evaluateRobustness(model, take(data, 10), { attacks: [{ name: 'fgsm' }], epsilons: [0.1], checks: false });
    expect(report.evaluation).toMatchObject({ preset: null, complete: false });
    expect(renderTable(report)).toMatch(/Partial evaluation/);
    await expect(evaluateRobustness(model, data, { attacks: [{ name: 'fgsm' }], preset: 'fast', epsilons: [0.1] })).rejects.toThrow(/either attacks or preset/);
    await expect(evaluateRobustness(model, data, { preset: 'strong' as never, epsilons: [0.1] })).rejects.toThrow(/unknown preset "strong"/);
  });

  it('the L2 standard ensemble runs with Square L2 and stays in the L2 ball', async () => {
    const { report } = await evaluateRobustness(model, take(data, 12), { preset: 'standard', norm: 'l2', epsilons: [1.5], checks: false });
    expect(report.config.norm).toBe('l2');
    for (const o of report.results[0]!.attacks) if (o.perturbation.l2.max !== null) expect(o.perturbation.l2.max).toBeLessThanOrEqual(1.5 + 1e-5);
    expect(report.minimumNorm!.norm).toBe('l2');
  });

  for (const [norm, attacks, eps] of [['l2', ['fmn', 'cw', 'deepfool', 'fab-t'], [0.5, 1.5]], ['l1', ['fmn', 'ead'], [3, 10]], ['linf', ['fmn', 'fab-t', 'deepfool'], [0.05, 0.15]]] as const) {
    it(`minimum-norm under ${norm} keeps each example's smallest distance over ${attacks.join(', ')} and names who found it`, async () => {
      const few = { fmn: { steps: 20 }, cw: { steps: 20, binarySteps: 3, initialConst: 1, learningRate: 0.05 }, deepfool: { steps: 10 }, 'fab-t': { steps: 10, targets: 2 }, ead: { steps: 20, binarySteps: 3, initialConst: 1, learningRate: 0.05 } } as Record<string, Record<string, unknown>>;
      const list = attacks.map((name) => ({ name, options: few[name]! }));
      const before = tf.memory().numTensors;
      const { report } = await evaluateRobustness(model, take(data, 10), { attacks: list, norm, epsilons: [...eps], checks: false });
      expect(tf.memory().numTensors).toBe(before);
      const m = report.minimumNorm!;
      expect(m.norm).toBe(norm);
      expect(m.attacks).toEqual([...attacks]);
      // Each example's distance is the smallest its attacks found alone.
      const alone = await Promise.all(attacks.map(async (name) => (await evaluateRobustness(model, take(data, 10), { attacks: [{ name, options: few[name]! }], norm, epsilons: [...eps], checks: false })).report.minimumNorm!.distances));
      m.distances.forEach((d, i) => {
        const each = alone.map((a) => a[i] ?? Infinity);
        const best = Math.min(...each);
        expect(d ?? Infinity).toBe(best);
        if (d !== null && d > 0) expect(m.foundBy![i]).toBe(attacks[each.indexOf(best)]);
        else expect(m.foundBy![i]).toBeNull();
      });
      // The worst case at each eps is the share of examples farther than eps.
      for (const r of report.results) expect(r.worstCase.robustAccuracy).toBeCloseTo(robustAtDistance(m.distances, r.eps), 10);
      expect(renderTable(report)).toMatch(new RegExp(`minimum-norm \\(${attacks.join(', ')}\\): median ${norm === 'linf' ? 'L∞' : norm.toUpperCase()} distance .*closest found by`));
      const ajv = new Ajv2020({ strict: false });
      const validate = ajv.compile(REPORT_JSON_SCHEMA);
      expect(validate(JSON.parse(JSON.stringify(report))), JSON.stringify(validate.errors)).toBe(true);
    });
  }

  it('the minimum-norm preset picks the attacks of the norm; under L1 the standard preset runs without Square and calls itself partial', async () => {
    expect(presetAttacks('minimum-norm', 'l2').map((a) => a.name)).toEqual(['fmn', 'cw', 'deepfool', 'fab-t']);
    expect(presetAttacks('minimum-norm', 'l1').map((a) => a.name)).toEqual(['fmn', 'ead']);
    expect(presetAttacks('standard', 'l1').map((a) => a.name)).toEqual(['apgd-ce', 'apgd-t', 'fab-t']);
    const { report } = await evaluateRobustness(model, take(data, 6), { preset: 'fast', norm: 'l1', epsilons: [5], checks: false });
    expect(report.config.attacks.map((a) => a.name)).toEqual(['apgd-ce', 'apgd-t']);
    for (const o of report.results[0]!.attacks) if (o.perturbation.l1?.max != null) expect(o.perturbation.l1.max).toBeLessThanOrEqual(5 * (1 + 1e-5));
    expect(completeness('standard', presetAttacks('standard', 'l1'), false, 'l1').complete).toBe(false);
  });
});

describe('sanity checks flag gradient masking', () => {
  it('a model whose logits pass through a rounding step is flagged (zero gradients, gradient-free attack wins)', async () => {
    await useBackend('wasm');
    const masked = fromFunction((x) => tf.round(tf.mul(net.predict(x) as tf.Tensor2D, 4)) as tf.Tensor2D, { numClasses: 10, inputShape: [28, 28, 1] });
    const { report } = await evaluateRobustness(masked, data, { attacks: [{ name: 'pgd', options: { steps: 5 } }], epsilons: [0.2], checksLimit: 30, squareQueries: 150 });
    expect(byId(report, 'zero-gradients').status).toBe('warn');
    expect(byId(report, 'large-eps').status).toBe('warn');
    expect(byId(report, 'gradient-free').status).toBe('warn');
  });

  it('a model that outputs saturated probabilities is flagged', async () => {
    await useBackend('wasm');
    const probs = fromFunction((x) => tf.softmax(tf.mul(net.predict(x) as tf.Tensor2D, 50)) as tf.Tensor2D, { numClasses: 10, inputShape: [28, 28, 1] });
    const wrapped = fromLayersModel(tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [28, 28, 1] }), tf.layers.flatten(), tf.layers.dense({ units: 10 }), tf.layers.softmax(), tf.layers.reshape({ targetShape: [10] })] }));
    expect(wrapped.warnings.length).toBe(1);
    const { report } = await evaluateRobustness(wrapped, data, { attacks: [{ name: 'fgsm' }], epsilons: [0.1], checksLimit: 20, squareQueries: 50 });
    expect(byId(report, 'probabilities').status).toBe('warn');
    const r2 = await evaluateRobustness(probs, data, { attacks: [{ name: 'pgd', options: { steps: 5 } }], epsilons: [0.2], checksLimit: 30, squareQueries: 150 });
    expect(r2.report.checks.filter((c) => c.status === 'warn').length).toBeGreaterThan(0);
  });

  it('a randomized model is flagged', async () => {
    await useBackend('wasm');
    let calls = 0;
    const noisy = fromFunction((x) => tf.add(net.predict(x) as tf.Tensor2D, tf.randomNormal([x.shape[0], 10], 0, 0.5, 'float32', ++calls)) as tf.Tensor2D, { numClasses: 10, inputShape: [28, 28, 1] });
    const { report } = await evaluateRobustness(noisy, data, { attacks: [{ name: 'fgsm' }], epsilons: [0.1], checksLimit: 20, squareQueries: 20 });
    expect(byId(report, 'randomized').status).toBe('warn');
  });
});
