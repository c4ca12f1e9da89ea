/**
 * The robustness evaluator: clean accuracy, robust accuracy per attack and epsilon, and the
 * per-example worst case over all attacks, computed as a cascade in which each attack runs
 * only on the points still robust (as AutoAttack does). Because every random draw is seeded
 * per example (attackDataset), an attack's result on an example is the same whether it runs in
 * the cascade or alone, so the first attack's figure equals what `advkit attack` measures.
 * Sanity checks (checks.ts) run on a subset and are reported as warnings with suggestions.
 *
 * @example
 * const { report } = await evaluateRobustness(model, take(loadMnist('test'), 500), {
 *   attacks: [{ name: 'fgsm' }, { name: 'pgd', options: { steps: 40 } }],
 *   epsilons: [0, 0.1, 0.2, 0.3],
 * });
 * console.log(renderTable(report));
 */
import * as tf from '@tensorflow/tfjs';
import { attackDataset } from '../attacks/dataset.js';
import type { AttackPool } from '../backend/pool.js';
import { ATTACK_NAMES, ATTACKS, type AttackName } from '../attacks/registry.js';
import { backendStatus } from '../backend/index.js';
import { batches, checkShapes, size, subset, type Dataset } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber, show, defined } from '../util/errors.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { runChecks } from './checks.js';
import { REPORT_SCHEMA_ID, REPORT_VERSION, stats, type AttackOutcome, type EpsilonResult, type RobustnessReport } from './report.js';

export interface AttackSpec {
  name: AttackName;
  /** Options for the attack (steps, restarts, loss, ...); eps, norm and seed come from the evaluation. */
  options?: Record<string, unknown>;
}

export interface EvaluateOptions {
  attacks: AttackSpec[];
  epsilons: number[];
  norm?: 'linf' | 'l2';
  seed?: number;
  batchSize?: number;
  /** Attack only points still robust (default true). */
  cascade?: boolean;
  /** Run the sanity checks (default true). */
  checks?: boolean;
  /** Examples the sanity checks use (default 100). */
  checksLimit?: number;
  /** Queries of the Square attack in the gradient-free check (default 300). */
  squareQueries?: number;
  /** Adversarial examples to keep for the example grid (default 0). */
  keepExamples?: number;
  modelName?: string;
  /** Worker threads for the attacks (see AttackPool); results are the same without. */
  pool?: AttackPool;
  onProgress?: (message: string, done: number, total: number) => void;
}

export interface KeptExample {
  index: number;
  label: number;
  prediction: number;
  attack: string;
  eps: number;
  x: Float32Array;
  adversarial: Float32Array;
}

export interface Evaluation {
  report: RobustnessReport;
  /** Examples broken at the largest epsilon (for the PNG grid); not part of the JSON report. */
  examples: KeptExample[];
}

export const EVALUATE_DEFAULTS = Object.freeze({ norm: 'linf' as const, seed: 0, batchSize: 128, cascade: true, checks: true, checksLimit: 100, squareQueries: 300, keepExamples: 0 });

async function cleanPredictions(model: Classifier, data: Dataset, batchSize: number): Promise<Int32Array> {
  const out = new Int32Array(size(data));
  for (const b of batches(data, batchSize)) {
    const p = tf.tidy(() => tf.argMax(model.logits(b.x), 1));
    out.set(await p.data(), b.start);
    tf.dispose([p, b.x, b.y]);
  }
  return out;
}

function threatText(norm: 'linf' | 'l2', epsilons: number[], attacks: AttackSpec[]): string {
  const ball = norm === 'linf' ? 'L∞' : 'L2';
  return `White-box evasion: the attacker knows the model and its gradients and perturbs each input within an ${ball} ball of radius ${epsilons.join(', ')} (pixel units, images in [0, 1]) to change the prediction (untargeted), using ${attacks.map((a) => a.name.toUpperCase()).join(', ')}.`;
}

export function validateEvaluateOptions(fn: string, o: EvaluateOptions): void {
  check(Array.isArray(o.attacks) && o.attacks.length > 0, fn, () => `attacks must be a non-empty list, but got ${show(o.attacks)}.`);
  for (const a of o.attacks) {
    check(ATTACK_NAMES.includes(a?.name), fn, () => `unknown attack ${show(a?.name)}; use one of ${ATTACK_NAMES.join(', ')}.`);
    if (a.name === 'square') check((o.norm ?? 'linf') === 'linf', fn, () => 'the square attack is L∞ only; use norm linf or drop it.');
  }
  check(Array.isArray(o.epsilons) && o.epsilons.length > 0, fn, () => `epsilons must be a non-empty list, but got ${show(o.epsilons)}.`);
  o.epsilons.forEach((e, i) => checkFiniteNumber(fn, `epsilons[${i}]`, e, { min: 0 }));
  check(o.norm === undefined || o.norm === 'linf' || o.norm === 'l2', fn, () => `norm must be 'linf' or 'l2', but got ${show(o.norm)}.`);
}

/** How a defended classifier's gradients are taken (BPDA/EOT), for the report. */
function describeDefense(model: Classifier): string | undefined {
  const d = model as Classifier & { describe?: () => string };
  return typeof d.describe === 'function' ? d.describe() : undefined;
}

export async function evaluateRobustness(model: Classifier, data: Dataset, options: EvaluateOptions): Promise<Evaluation> {
  const fn = 'evaluateRobustness';
  validateEvaluateOptions(fn, options);
  const o = { ...EVALUATE_DEFAULTS, ...defined(options) };
  const seed = checkFiniteNumber(fn, 'seed', o.seed, { integer: true, min: 0 });
  const batchSize = checkFiniteNumber(fn, 'batchSize', o.batchSize, { integer: true, min: 1 });
  checkShapes(fn, model.inputShape, data);
  const t0 = performance.now();
  const n = size(data);
  const epsilons = [...o.epsilons].sort((a, b) => a - b);
  const clean = await cleanPredictions(model, data, batchSize);
  const cleanCorrect = Uint8Array.from(clean, (p, i) => (p === data.labels[i] ? 1 : 0));
  const nCorrect = cleanCorrect.reduce((a, b) => a + b, 0);
  const results: EpsilonResult[] = [];
  const kept: KeptExample[] = [];
  const total = epsilons.length * o.attacks.length;
  let done = 0;
  const per = data.shape[0] * data.shape[1] * data.shape[2];

  for (const eps of epsilons) {
    const robust = Uint8Array.from(cleanCorrect);
    const outcomes: AttackOutcome[] = [];
    for (const [k, spec] of o.attacks.entries()) {
      const t1 = performance.now();
      const pool = Array.from({ length: n }, (_, i) => i).filter((i) => (o.cascade ? robust[i] : cleanCorrect[i]) === 1);
      let successes = 0;
      const linfs: number[] = [];
      const l2s: number[] = [];
      if (eps > 0 && pool.length > 0) {
        const sub = subset(data, pool);
        const attack = ATTACKS[spec.name];
        const opts = { ...(spec.options ?? {}), eps, norm: o.norm, seed };
        for await (const b of attackDataset(attack as never, model, sub, opts as never, { batchSize, pool: o.pool })) {
          const r = b.result;
          const wantKeep = o.keepExamples > 0 && eps === epsilons[epsilons.length - 1] && kept.length < o.keepExamples && r.success.some((s) => s === 1);
          const [xs, adv] = wantKeep ? await Promise.all([b.x.data(), r.adversarial.data()]) : [undefined, undefined];
          for (let j = 0; j < b.end - b.start; j++) {
            if (r.success[j] !== 1) continue;
            const i = pool[b.start + j]!;
            successes++;
            robust[i] = 0;
            linfs.push(r.norms.linf[j]!);
            l2s.push(r.norms.l2[j]!);
            if (xs && adv && kept.length < o.keepExamples) {
              kept.push({ index: i, label: data.labels[i]!, prediction: r.predictions[j]!, attack: spec.name, eps, x: Float32Array.from(xs.subarray(j * per, (j + 1) * per)), adversarial: Float32Array.from(adv.subarray(j * per, (j + 1) * per)) });
            }
          }
          tf.dispose([b.x, r.adversarial]);
        }
      }
      const individual = !o.cascade || k === 0;
      outcomes.push({
        attack: spec.name,
        attacked: eps > 0 ? pool.length : 0,
        successes,
        successRate: eps > 0 && pool.length > 0 ? successes / pool.length : null,
        robustAccuracy: individual && n > 0 ? (nCorrect - successes) / n : null,
        robustAccuracyAfter: n > 0 ? robust.reduce((a, b) => a + b, 0) / n : 0,
        perturbation: { linf: stats(linfs), l2: stats(l2s) },
        seconds: (performance.now() - t1) / 1000,
      });
      o.onProgress?.(`${spec.name} eps=${eps}`, ++done, total);
    }
    const perClass = data.classNames.map((name, label) => {
      let count = 0;
      let ok = 0;
      for (let i = 0; i < n; i++) if (data.labels[i] === label) { count++; ok += robust[i]!; }
      return { label, name, examples: count, robustAccuracy: count ? ok / count : null };
    });
    results.push({ eps, attacks: outcomes, worstCase: { robustAccuracy: n > 0 ? robust.reduce((a, b) => a + b, 0) / n : 0, perClass } });
  }

  const checks = o.checks ? await runChecks(model, data, cleanCorrect, results, { ...o, seed, batchSize, epsilons, pool: o.pool }) : [];
  const seconds = (performance.now() - t0) / 1000;
  const report: RobustnessReport = {
    schema: REPORT_SCHEMA_ID,
    version: REPORT_VERSION,
    createdBy: { advkit: ADVKIT_VERSION, tfjs: tf.version_core, backend: backendStatus()?.name ?? tf.getBackend(), node: process.versions.node },
    model: { name: o.modelName ?? 'model', numClasses: model.numClasses, inputShape: [...model.inputShape], bounds: [model.bounds[0], model.bounds[1]], randomized: model.randomized, warnings: [...model.warnings], ...(model.output ? { output: { ...model.output } } : {}), ...(describeDefense(model) ? { defense: describeDefense(model) } : {}) },
    data: { name: data.name, examples: n, classNames: [...data.classNames] },
    config: { attacks: o.attacks.map((a) => ({ name: a.name, options: { ...(a.options ?? {}) } })), epsilons, norm: o.norm, seed, batchSize, cascade: o.cascade, checks: o.checks },
    threatModel: {
      description: threatText(o.norm, epsilons, o.attacks),
      knowledge: 'white-box',
      norm: o.norm,
      epsilons,
      targeted: false,
      catalogue: [
        { source: 'MITRE ATLAS', id: 'AML.T0043', name: 'Craft Adversarial Data' },
        { source: 'OWASP Machine Learning Security Top 10', id: 'ML01', name: 'Input Manipulation Attack' },
      ],
    },
    cleanAccuracy: n > 0 ? nCorrect / n : 0,
    results,
    checks,
    timing: { seconds, examplesPerSecond: seconds > 0 ? (n * epsilons.length) / seconds : 0 },
  };
  return { report, examples: kept };
}
