/**
 * Sanity checks on an evaluation, after Carlini et al. 2019 ("On Evaluating Adversarial
 * Robustness", arXiv:1902.06705) and AutoAttack's flags. Each runs on a subset of
 * clean-correct examples and reports `pass` or `warn` with what was measured and what to do:
 *
 * - `probabilities`: the model outputs probabilities instead of logits;
 * - `randomized`: two identical calls give different logits (use EOT);
 * - `zero-gradients`: zero or non-finite input gradients on many points (masking);
 * - `monotone`: worst-case accuracy rises with eps;
 * - `iterative-vs-single-step`: PGD leaves more points robust than FGSM;
 * - `convergence`: the run's strongest gradient attack, with twice the steps and two more
 *   restarts, breaks points the whole run left robust;
 * - `iterations`: APGD-CE with all its steps leaves more points robust than with a quarter of
 *   them (success should never fall with more iterations);
 * - `targeted-vs-untargeted`: APGD-T breaks many points APGD-CE could not (a loss surface on
 *   which cross-entropy fails: scaled or saturated logits);
 * - `square-success`: the black-box Square attack lowers robust accuracy after the white-box
 *   attacks of the cascade (AutoAttack's flag for gradient masking);
 * - `classes`: fewer than 4 classes, so targeted DLR falls back to a pairwise margin;
 * - `large-eps`: accuracy does not fall to chance when eps covers the whole input range;
 * - `gradient-free`: the Square attack (black-box) breaks points the gradient attacks did not.
 */
import * as tf from '@tensorflow/tfjs';
import { attackDataset } from '../attacks/dataset.js';
import type { AttackPool } from '../attacks/pool.js';
import type { AttackName } from '../attacks/registry.js';
import { size, subset, type Dataset } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import type { AttackSpec } from './evaluate.js';
import type { EpsilonResult, SanityCheck } from './report.js';
import { diameter, type NormName } from '../util/norms.js';

interface CheckOptions {
  attacks: AttackSpec[];
  norm: NormName;
  seed: number;
  batchSize: number;
  epsilons: number[];
  checksLimit: number;
  squareQueries: number;
  pool?: AttackPool;
  cascade: boolean;
  /** Per eps (sorted), 1 where an example stayed robust under the whole run. */
  robustAt: Uint8Array[];
}

/** Gradient attacks from strongest to weakest, for the convergence check. */
const STRENGTH: readonly AttackName[] = ['apgd-t', 'apgd-ce', 'apgd-dlr', 'pgd', 'mifgsm', 'bim', 'fgsm'];

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

async function robustMask(model: Classifier, ds: Dataset, name: AttackName, options: Record<string, unknown>, batchSize: number, pool?: AttackPool): Promise<Uint8Array> {
  const robust = new Uint8Array(size(ds)).fill(1);
  for await (const b of attackDataset(name, model, ds, options as never, { batchSize, pool })) {
    b.result.success.forEach((s, j) => { if (s) robust[b.start + j] = 0; });
    tf.dispose([b.x, b.result.adversarial]);
  }
  return robust;
}

const count = (m: Uint8Array) => m.reduce((a, b) => a + b, 0);

export async function runChecks(model: Classifier, data: Dataset, cleanCorrect: Uint8Array, results: EpsilonResult[], o: CheckOptions): Promise<SanityCheck[]> {
  const checks: SanityCheck[] = [];
  const picked: number[] = [];
  for (let i = 0; i < cleanCorrect.length && picked.length < o.checksLimit; i++) if (cleanCorrect[i]) picked.push(i);
  const ds = subset(data, picked);
  const m = picked.length;
  const x = tf.tensor4d(ds.images, [m, ...ds.shape]);
  const y = tf.tensor1d(ds.labels, 'int32');

  // Probabilities instead of logits.
  checks.push(model.warnings.length
    ? { id: 'probabilities', status: 'warn', message: model.warnings.join(' '), suggestion: 'Give advkit the logits (the model without its final softmax): gradients of saturated probabilities vanish and make the model look robust.' }
    : { id: 'probabilities', status: 'pass', message: model.output && model.output.kind !== 'logits' ? `Logits are used: ${model.output.detail}` : 'The model outputs logits.' });

  if (m === 0) {
    checks.push({ id: 'subset', status: 'warn', message: 'No example is classified correctly, so no attack-based check could run.', suggestion: 'Check that the model and the data match (classes, scaling to [0, 1]).' });
    tf.dispose([x, y]);
    return checks;
  }

  // Randomness: two identical calls.
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.logits(x), model.logits(x)))));
  const maxDiff = (await diff.data())[0]!;
  diff.dispose();
  checks.push(maxDiff > 0 || model.randomized
    ? { id: 'randomized', status: 'warn', message: `Two identical calls gave logits differing by up to ${maxDiff.toPrecision(3)}: the model is randomized.`, suggestion: 'Attack it with EOT (the mean gradient over many draws) and report accuracy over several draws.', details: { maxDifference: maxDiff } }
    : { id: 'randomized', status: 'pass', message: 'Two identical calls gave identical logits.' });

  // Zero or non-finite gradients.
  const g = tf.tidy(() => {
    const grad = tf.grad((xx: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, model.numClasses), model.logits(xx as tf.Tensor4D), undefined, tf.Reduction.SUM))(x);
    const flat = tf.reshape(grad, [m, -1]);
    const bad = tf.logicalOr(tf.equal(tf.max(tf.abs(flat), 1), 0), tf.logicalNot(tf.all(tf.isFinite(flat), 1)));
    return tf.sum(tf.cast(bad, 'int32'));
  });
  const badGrads = (await g.data())[0]!;
  g.dispose();
  checks.push(badGrads / m > 0.1
    ? { id: 'zero-gradients', status: 'warn', message: `${badGrads} of ${m} examples (${pct(badGrads / m)}) have zero or non-finite input gradients.`, suggestion: 'Gradients are masked (rounding, quantization, non-differentiable preprocessing, saturated softmax): use BPDA for non-differentiable steps and trust the gradient-free attack over the gradient ones.', details: { examples: m, bad: badGrads } }
    : { id: 'zero-gradients', status: 'pass', message: `${badGrads} of ${m} examples have zero or non-finite input gradients.` });

  // Monotonicity of the worst case.
  const rising = results.filter((r, i) => i > 0 && r.worstCase.robustAccuracy > results[i - 1]!.worstCase.robustAccuracy + 1e-12);
  checks.push(rising.length
    ? { id: 'monotone', status: 'warn', message: `Worst-case robust accuracy rises with eps at eps ${rising.map((r) => r.eps).join(', ')}.`, suggestion: 'A larger budget can never help the model: the attack is failing to optimize (more steps, restarts, another loss).' }
    : { id: 'monotone', status: 'pass', message: 'Worst-case robust accuracy never rises with eps.' });

  if (o.norm === 'l0') {
    checks.push({ id: 'attack-checks', status: 'warn', message: 'The attack-based checks (PGD, APGD, FGSM, Square at a huge eps and with more budget) run under Lp norms; under L0 they did not run.', suggestion: 'Check an L0 figure under L1 or L2 as well: a model whose L0 distances look large while its L1 distances are small is suspect.' });
    tf.dispose([x, y]);
    return checks;
  }

  const nonzero = o.epsilons.filter((e) => e > 0);
  const midEps = nonzero.length ? nonzero[Math.floor((nonzero.length - 1) / 2)]! : 0;
  const pgdSpec = o.attacks.find((a) => a.name === 'pgd');
  const pgdOpts = { steps: 20, ...(pgdSpec?.options ?? {}), norm: o.norm, seed: o.seed };
  const base = { norm: o.norm, seed: o.seed };
  if (midEps > 0) {
    const pgdRobust = await robustMask(model, ds, 'pgd', { ...pgdOpts, eps: midEps }, o.batchSize, o.pool);
    const fgsmRobust = await robustMask(model, ds, 'fgsm', { ...base, eps: midEps }, o.batchSize, o.pool);
    checks.push(count(pgdRobust) > count(fgsmRobust)
      ? { id: 'iterative-vs-single-step', status: 'warn', message: `At eps ${midEps}, PGD leaves ${count(pgdRobust)} of ${m} robust but single-step FGSM only ${count(fgsmRobust)}.`, suggestion: 'An iterative attack weaker than one step means its optimization fails: check the step size and the loss, and look for gradient masking.', details: { eps: midEps, pgd: count(pgdRobust), fgsm: count(fgsmRobust) } }
      : { id: 'iterative-vs-single-step', status: 'pass', message: `At eps ${midEps}, PGD leaves ${count(pgdRobust)} of ${m} robust, FGSM ${count(fgsmRobust)}.` });

    // Convergence: the run's strongest gradient attack, made stronger, against the whole run.
    const strongest = STRENGTH.find((name) => o.attacks.some((a) => a.name === name)) ?? 'pgd';
    const spec = o.attacks.find((a) => a.name === strongest);
    const baseOpts: Record<string, unknown> = spec ? { ...(spec.options ?? {}) } : { ...pgdOpts };
    const steps = Number(baseOpts.steps ?? (strongest.startsWith('apgd') ? 100 : strongest === 'fgsm' ? 1 : 20));
    const restarts = Number(baseOpts.restarts ?? 1);
    const stronger = strongest === 'fgsm' ? 'pgd' : strongest;
    const e = o.epsilons.indexOf(midEps);
    const runRobust = Uint8Array.from(picked, (i) => o.robustAt[e]?.[i] ?? 1);
    // Only the points the run left robust can show a difference; APGD-T's targets multiply its
    // runs, so it gets one restart more where the others get two.
    const extra = stronger === 'apgd-t' ? 1 : 2;
    const open = Array.from(runRobust.keys()).filter((j) => runRobust[j]);
    const strongOpen = open.length ? await robustMask(model, subset(ds, open), stronger, { ...baseOpts, ...base, eps: midEps, steps: 2 * steps, restarts: restarts + extra }, o.batchSize, o.pool) : new Uint8Array(0);
    const strong = new Uint8Array(m);
    open.forEach((j, k) => { strong[j] = strongOpen[k]!; });
    const drop = runRobust.reduce((a, v, j) => a + (v && !strong[j] ? 1 : 0), 0);
    checks.push(drop > Math.max(2, 0.02 * m)
      ? { id: 'convergence', status: 'warn', message: `At eps ${midEps}, ${stronger.toUpperCase()} with ${2 * steps} steps and ${restarts + extra} restarts broke ${drop} of the ${count(runRobust)} examples (of ${m}) the whole run left robust.`, suggestion: 'The attacks had not converged: raise steps and restarts (or use the standard preset) until accuracy stops falling, and report those settings.', details: { eps: midEps, attack: stronger, runRobust: count(runRobust), stronger: count(strong), drop } }
      : { id: 'convergence', status: 'pass', message: `At eps ${midEps}, ${stronger.toUpperCase()} with ${2 * steps} steps and ${restarts + extra} restarts broke ${drop} of the ${count(runRobust)} examples (of ${m}) the whole run left robust.` });

    // More iterations should never break fewer points.
    const apgdSteps = Number(o.attacks.find((a) => a.name === 'apgd-ce')?.options?.steps ?? 100);
    const quarter = Math.max(1, Math.floor(apgdSteps / 4));
    const few = await robustMask(model, ds, 'apgd-ce', { ...base, eps: midEps, steps: quarter }, o.batchSize, o.pool);
    const many = await robustMask(model, ds, 'apgd-ce', { ...base, eps: midEps, steps: apgdSteps }, o.batchSize, o.pool);
    const worse = count(many) - count(few);
    checks.push(worse > Math.max(1, 0.01 * m)
      ? { id: 'iterations', status: 'warn', message: `At eps ${midEps}, APGD-CE with ${apgdSteps} steps leaves ${count(many)} of ${m} robust but with ${quarter} steps only ${count(few)}.`, suggestion: 'Success that falls with more iterations means the optimization is unstable (noisy or shattered gradients): look for randomness or masking, and use EOT or BPDA.', details: { eps: midEps, steps: apgdSteps, robust: count(many), fewSteps: quarter, robustFewSteps: count(few) } }
      : { id: 'iterations', status: 'pass', message: `At eps ${midEps}, APGD-CE leaves ${count(many)} of ${m} robust with ${apgdSteps} steps, ${count(few)} with ${quarter}.` });

    if (o.norm === 'linf' && !o.attacks.some((a) => a.name === 'square')) {
      const sq = await robustMask(model, ds, 'square', { eps: midEps, queries: o.squareQueries, seed: o.seed }, o.batchSize, o.pool);
      const gradRobust = Uint8Array.from(pgdRobust, (v, i) => v & fgsmRobust[i]! & strong[i]! & runRobust[i]!);
      const onlySquare = gradRobust.reduce((a, v, i) => a + (v && !sq[i] ? 1 : 0), 0);
      checks.push(onlySquare > Math.max(1, 0.02 * m)
        ? { id: 'gradient-free', status: 'warn', message: `At eps ${midEps}, the gradient-free Square attack (${o.squareQueries} queries) broke ${onlySquare} of ${m} examples that FGSM and PGD could not.`, suggestion: 'A black-box attack beating white-box ones is the signature of gradient masking: the gradient-based figures overstate robustness.', details: { eps: midEps, onlySquare, squareRobust: count(sq), gradientRobust: count(gradRobust) } }
        : { id: 'gradient-free', status: 'pass', message: `At eps ${midEps}, the Square attack broke ${onlySquare} examples the gradient attacks could not (of ${m}).` });
    }
  }

  // From the run's own figures: APGD-T against APGD-CE, Square after the white-box attacks.
  const stage = (r: EpsilonResult, name: string) => r.attacks.find((a) => a.attack === name);
  const nonzeroResults = results.filter((r) => r.eps > 0);
  if (o.attacks.some((a) => a.name === 'apgd-t') && o.attacks.some((a) => a.name === 'apgd-ce')) {
    const wide = nonzeroResults.filter((r) => {
      const t = stage(r, 'apgd-t');
      const ce = stage(r, 'apgd-ce');
      return t && ce && t.attacked > 0 && o.attacks.findIndex((a) => a.name === 'apgd-ce') < o.attacks.findIndex((a) => a.name === 'apgd-t') && t.successes > Math.max(2, 0.05 * (ce.attacked || 1));
    });
    checks.push(wide.length
      ? { id: 'targeted-vs-untargeted', status: 'warn', message: `APGD-T broke ${wide.map((r) => `${stage(r, 'apgd-t')!.successes} at eps ${r.eps}`).join(', ')} of the points APGD-CE left robust.`, suggestion: 'Cross-entropy fails on this model where the scale-invariant DLR loss succeeds: the logits are likely scaled or saturated, so figures from CE-only attacks (PGD, FGSM) overstate robustness.' }
      : { id: 'targeted-vs-untargeted', status: 'pass', message: 'APGD-T broke few points beyond APGD-CE.' });
  }
  const squareIndex = o.attacks.findIndex((a) => a.name === 'square');
  if (squareIndex > 0 && o.cascade) {
    const total = results[0] ? data.labels.length : 0;
    const flagged = nonzeroResults.filter((r) => total > 0 && (stage(r, 'square')?.successes ?? 0) / total > 0.002);
    checks.push(flagged.length
      ? { id: 'square-success', status: 'warn', message: `The black-box Square attack lowered robust accuracy after the white-box attacks by ${flagged.map((r) => `${pct(stage(r, 'square')!.successes / total)} at eps ${r.eps}`).join(', ')}.`, suggestion: 'A black-box attack beating white-box ones is the signature of gradient masking: trust the worst case, not the gradient attacks alone, and look for the masking (BPDA, EOT).' }
      : { id: 'square-success', status: 'pass', message: 'Square broke no more than 0.2% of the points after the white-box attacks.' });
  }
  if (model.numClasses < 4 && o.attacks.some((a) => a.name === 'apgd-t' || a.name === 'apgd-dlr')) {
    checks.push({ id: 'classes', status: 'warn', message: `The model has ${model.numClasses} classes; the DLR loss needs at least 4 (3 untargeted), so APGD-T used the pairwise margin z_t − z_y.`, suggestion: 'Treat DLR-based figures on this model with care; the CE and margin attacks remain exact.' });
  }

  // Huge budget: everything in the input range is reachable.
  const [lo, hi] = model.bounds;
  const dim = data.shape[0] * data.shape[1] * data.shape[2];
  const huge = diameter(o.norm, hi - lo, dim);
  const hugeRobust = await robustMask(model, ds, 'pgd', { ...pgdOpts, eps: huge }, o.batchSize, o.pool);
  const chance = 1 / model.numClasses;
  checks.push(count(hugeRobust) / m > chance
    ? { id: 'large-eps', status: 'warn', message: `With eps ${huge.toPrecision(3)} (the whole input range) PGD leaves ${pct(count(hugeRobust) / m)} robust, above chance (${pct(chance)}).`, suggestion: 'Any input is reachable at this budget, so the attack should reach (near) zero: gradients are masked or the attack is broken.', details: { eps: huge, robust: count(hugeRobust), examples: m } }
    : { id: 'large-eps', status: 'pass', message: `With eps ${huge.toPrecision(3)} (the whole input range) PGD leaves ${pct(count(hugeRobust) / m)} robust.` });

  tf.dispose([x, y]);
  return checks;
}
