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
import { attackDataset, predictDataset } from '../attacks/dataset.js';
import type { AttackPool } from '../attacks/pool.js';
import { ATTACK_NAMES, checkAttackOptions, MINIMUM_NORM_ATTACKS, normRefusal, type AttackName } from '../attacks/registry.js';
import { completeness, presetAttacks, PRESET_NAMES, type PresetName } from './presets.js';
import { backendStatus } from '../backend/index.js';
import { checkShapes, datasetDigest, size, slice, subset, type Dataset } from '../data/dataset.js';
import type { ModelDigest } from '../models/io.js';
import { shardRange, type Shard } from '../util/shard.js';
import type { Classifier, Preprocessing } from '../models/classifier.js';
import { check, checkFiniteNumber, checkKnownOptions, show, defined } from '../util/errors.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { runChecks } from './checks.js';
import { REPORT_SCHEMA_ID, REPORT_VERSION, stats, type AttackOutcome, type EpsilonResult, type EvaluationRecords, type OutcomeRecord, type RobustnessReport } from './report.js';
import { isNormName, NORM_LABELS, NORM_NAMES, type NormName } from '../util/norms.js';

export interface AttackSpec {
  name: AttackName;
  /** Options for the attack (steps, restarts, loss, ...); eps, norm and seed come from the evaluation. */
  options?: Record<string, unknown>;
}

export interface EvaluateOptions {
  /** The attacks, run in this order; give either attacks or preset (default: preset 'standard'). */
  attacks?: AttackSpec[];
  /** A fixed ensemble (presets.ts): 'standard' (AutoAttack's), 'rand' or 'fast'. */
  preset?: PresetName;
  epsilons: number[];
  norm?: NormName;
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
  /** Evaluate only this shard's block of the data (util/shard.ts); merge the shards' reports with mergeReports. */
  shard?: Shard;
  /** The model files' SHA-256 (models/io.ts modelDigest), recorded in the report's provenance. */
  modelDigest?: ModelDigest | null;
  /** Recorded in a shard's report for the merge step (how to load the model and data for the checks). */
  shardSource?: Record<string, unknown>;
  /**
   * Where the run saves its progress after each attack at each eps, and finds it again: a run
   * killed and started again with the same checkpoint skips the finished steps and ends with
   * the same figures. The caller keys it to the run's settings (the CLI: --out/.state).
   */
  checkpoint?: { load(): Promise<EvaluationCheckpoint | undefined>; save(state: EvaluationCheckpoint): Promise<void> };
}

/** An evaluation's progress: the steps (eps x attack, eps-major) done and what they found. */
export interface EvaluationCheckpoint {
  steps: number;
  predictions: number[];
  outcomes: EvaluationRecords['outcomes'];
  distance: Array<number | null>;
  foundBy?: Array<string | null>;
  minimumRuns: Array<{ key: string; linf: Array<number | null>; l2: Array<number | null>; l1?: Array<number | null>; l0?: Array<number | null>; minimum: Array<number | null>; seconds: number }>;
}

/** A minimum-norm attack's one run: per example the kept example's distances and the minimum found. */
type MinimumRun = Record<NormName, Float32Array> & { minimum: Float32Array; seconds: number };

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

function threatText(norm: NormName, epsilons: number[], attacks: AttackSpec[]): string {
  const ball = NORM_LABELS[norm];
  return `White-box evasion: the attacker knows the model and its gradients and perturbs each input within an ${ball} ball of radius ${epsilons.join(', ')} (pixel units, images in [0, 1]) to change the prediction (untargeted), using ${attacks.map((a) => a.name.toUpperCase()).join(', ')}.`;
}

/** The attacks a run uses: the given list, or the preset's (standard by default). */
export function resolveAttacks(o: Pick<EvaluateOptions, 'attacks' | 'preset' | 'norm'>): { attacks: AttackSpec[]; preset?: PresetName } {
  if (o.attacks !== undefined) return { attacks: o.attacks, preset: undefined };
  const preset = o.preset ?? 'standard';
  return { attacks: presetAttacks(preset, o.norm ?? EVALUATE_DEFAULTS.norm), preset };
}

const EVALUATE_OPTION_NAMES = ['attacks', 'preset', 'epsilons', 'norm', 'seed', 'batchSize', 'cascade', 'checks', 'checksLimit', 'squareQueries', 'keepExamples', 'modelName', 'pool', 'onProgress', 'shard', 'modelDigest', 'shardSource', 'checkpoint'];

export function validateEvaluateOptions(fn: string, o: EvaluateOptions): void {
  check(typeof o === 'object' && o !== null, fn, () => `options must be an object with epsilons (and attacks or preset), but got ${show(o)}.`);
  checkKnownOptions(fn, o, EVALUATE_OPTION_NAMES);
  check(o.attacks === undefined || o.preset === undefined, fn, () => `give either attacks or preset, not both (preset ${show(o.preset)}).`);
  check(o.preset === undefined || (PRESET_NAMES as readonly string[]).includes(o.preset), fn, () => `unknown preset ${show(o.preset)}; use one of ${PRESET_NAMES.join(', ')}.`);
  const { attacks } = resolveAttacks(o);
  check(Array.isArray(attacks) && attacks.length > 0, fn, () => `attacks must be a non-empty list, but got ${show(attacks)}.`);
  for (const a of attacks) {
    check(ATTACK_NAMES.includes(a?.name), fn, () => `unknown attack ${show(a?.name)}; use one of ${ATTACK_NAMES.join(', ')}.`);
    checkAttackOptions(fn, a.name, a.options);
  }
  check(Array.isArray(o.epsilons) && o.epsilons.length > 0, fn, () => `epsilons must be a non-empty list, but got ${show(o.epsilons)}.`);
  o.epsilons.forEach((e, i) => checkFiniteNumber(fn, `epsilons[${i}]`, e, { min: 0 }));
  check(o.norm === undefined || isNormName(o.norm), fn, () => `norm must be one of ${NORM_NAMES.join(', ')}, but got ${show(o.norm)}.`);
  for (const a of attacks) {
    const why = normRefusal(a.name, o.norm ?? EVALUATE_DEFAULTS.norm);
    check(why === undefined, fn, () => why!);
  }
}

/** How a defended classifier's gradients are taken (BPDA/EOT), for the report. */
/** The classifier's preprocessing as plain arrays (a scalar mean or std becomes one value). */
function reportedPreprocessing(p: Preprocessing): NonNullable<RobustnessReport['model']['preprocessing']> {
  const list = (v: number | readonly number[]) => (typeof v === 'number' ? [v] : [...v]);
  return {
    ...(p.inputRange ? { inputRange: [p.inputRange[0], p.inputRange[1]] as [number, number] } : {}),
    ...(p.normalization ? { normalization: { mean: list(p.normalization.mean), std: list(p.normalization.std) } } : {}),
  };
}

function describeDefense(model: Classifier): string | undefined {
  const d = model as Classifier & { describe?: () => string };
  return typeof d.describe === 'function' ? d.describe() : undefined;
}

/**
 * The median of per-example distances where Infinity means "none found": null when more than
 * half are unknown (the median is then only known to exceed every distance found).
 */
function medianWithMissing(d: Float64Array): number | null {
  if (d.length === 0) return null;
  const sorted = Float64Array.from(d).sort();
  const mid = sorted.length >> 1;
  const m = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return Number.isFinite(m) ? m : null;
}

/** Which attack index and eps index a progress step is, for the records' layout. */
interface AttackPhase {
  records: EvaluationRecords;
  kept: KeptExample[];
}

/**
 * Runs every attack at every eps over `data` (a shard's block or the whole set) and records, per
 * example, what broke it: the raw material of the figures (summarizeRecords).
 */
async function attackPhase(model: Classifier, data: Dataset, attacks: AttackSpec[], epsilons: number[], o: EvaluateOptions & { norm: NormName; cascade: boolean; keepExamples: number }, seed: number, batchSize: number): Promise<AttackPhase> {
  const n = size(data);
  const maxEps = epsilons[epsilons.length - 1]!;
  const clean = await predictDataset(model, data, { batchSize, pool: o.pool, fn: 'evaluateRobustness' });
  const cleanCorrect = Uint8Array.from(clean, (p, i) => (p === data.labels[i] ? 1 : 0));
  const kept: KeptExample[] = [];
  const total = epsilons.length * attacks.length;
  let done = 0;
  const per = data.shape[0] * data.shape[1] * data.shape[2];
  // Each example's smallest adversarial distance found by any attack at any eps (0 when the
  // clean input is already wrong; Infinity while none is known).
  const distance = Float64Array.from(cleanCorrect, (c) => (c ? Infinity : 0));
  // A success at eps lies in the eps-ball by construction (its norm can round a hair past eps).
  const foundBy: Array<string | null> = Array.from({ length: n }, () => null);
  const found = (i: number, d: number, attack: string) => {
    if (d < distance[i]!) { distance[i] = d; foundBy[i] = attack; }
  };
  // Minimum-norm attacks answer every eps from one run over all clean-correct points.
  const minimumRuns = new Map<string, MinimumRun>();
  const keepFrom = (b: { x: tf.Tensor4D }, r: { adversarial: tf.Tensor4D; success: Uint8Array }) =>
    o.keepExamples > 0 && kept.length < o.keepExamples && r.success.some((v) => v === 1) ? Promise.all([b.x.data(), r.adversarial.data()]) : Promise.resolve(undefined);
  /** Keeps example i (row j of a batch whose pixels keepFrom read) for the grid. */
  const keepExample = (pixels: [Float32Array | Int32Array | Uint8Array, Float32Array | Int32Array | Uint8Array] | undefined, i: number, j: number, prediction: number, attack: string, eps: number) => {
    if (!pixels || kept.length >= o.keepExamples) return;
    kept.push({ index: i, label: data.labels[i]!, prediction, attack, eps, x: Float32Array.from(pixels[0].subarray(j * per, (j + 1) * per)), adversarial: Float32Array.from(pixels[1].subarray(j * per, (j + 1) * per)) });
  };

  const outcomes: EvaluationRecords['outcomes'] = [];
  // Resume: the steps (eps x attack, in order) a killed run finished, as it saved them.
  const saved = o.checkpoint ? await o.checkpoint.load() : undefined;
  const resumeSteps = saved && saved.predictions.length === n && saved.predictions.every((p, i) => p === clean[i]) ? saved.steps : 0;
  if (saved && resumeSteps > 0) {
    saved.distance.forEach((d, i) => { distance[i] = d === null ? Infinity : d; });
    saved.foundBy?.forEach((a, i) => { foundBy[i] = a; });
    for (const m of saved.minimumRuns) {
      const f32 = (v: Array<number | null> | undefined) => Float32Array.from(v ?? Array.from({ length: n }, () => null), (x) => (x === null ? Infinity : x));
      minimumRuns.set(m.key, { linf: f32(m.linf), l2: f32(m.l2), l1: f32(m.l1), l0: f32(m.l0), minimum: f32(m.minimum), seconds: m.seconds });
    }
  }
  const save = async () => {
    if (!o.checkpoint) return;
    const list = (v: ArrayLike<number>) => Array.from(v, (x) => (Number.isFinite(x) ? x : null));
    await o.checkpoint.save({
      steps: done, predictions: Array.from(clean), outcomes: [...outcomes], distance: list(distance), foundBy: [...foundBy],
      minimumRuns: [...minimumRuns].map(([key, m]) => ({ key, linf: list(m.linf), l2: list(m.l2), l1: list(m.l1), l0: list(m.l0), minimum: list(m.minimum), seconds: m.seconds })),
    });
  };
  for (const [e, eps] of epsilons.entries()) {
    const robust = Uint8Array.from(cleanCorrect);
    const row: EvaluationRecords['outcomes'][number] = [];
    outcomes.push(row);
    for (const [k, spec] of attacks.entries()) {
      if (done < resumeSteps) {
        const rec = saved!.outcomes[e]![k]!;
        for (const i of rec.broken) robust[i] = 0;
        row.push(rec);
        o.onProgress?.(`${spec.name} eps=${eps}`, ++done, total);
        continue;
      }
      const t1 = performance.now();
      const pool = Array.from({ length: n }, (_, i) => i).filter((i) => (o.cascade ? robust[i] : cleanCorrect[i]) === 1);
      const rec: OutcomeRecord = { broken: [], linf: [], l2: [], l1: [], l0: [], seconds: 0 };
      const key = `${k}`;
      if (eps > 0 && MINIMUM_NORM_ATTACKS.includes(spec.name) && !minimumRuns.has(key)) {
        // One run at the largest eps on every clean-correct point; each eps reads it below.
        const all = Array.from({ length: n }, (_, i) => i).filter((i) => cleanCorrect[i] === 1);
        const none = () => new Float32Array(n).fill(Infinity);
        const run: MinimumRun = { linf: none(), l2: none(), l1: none(), l0: none(), minimum: none(), seconds: 0 };
        if (all.length > 0) {
          const opts = { ...(spec.options ?? {}), eps: maxEps, norm: o.norm, seed };
          for await (const b of attackDataset(spec.name, model, subset(data, all), opts as never, { batchSize, pool: o.pool })) {
            const r = b.result;
            const pixels = await keepFrom(b, r);
            for (let j = 0; j < b.end - b.start; j++) {
              const i = all[b.start + j]!;
              run.minimum[i] = r.minimumNorm?.[j] ?? Infinity;
              if (r.success[j] === 1) {
                for (const norm of NORM_NAMES) run[norm][i] = r.norms[norm][j]!;
                keepExample(pixels, i, j, r.predictions[j]!, spec.name, maxEps);
              }
              found(i, run.minimum[i]!, spec.name);
            }
            tf.dispose([b.x, r.adversarial]);
          }
        }
        run.seconds = (performance.now() - t1) / 1000;
        minimumRuns.set(key, run);
      }
      const minimum = minimumRuns.get(key);
      const record = (i: number, d: (norm: NormName) => number) => {
        robust[i] = 0;
        rec.broken.push(i);
        for (const norm of NORM_NAMES) {
          const v = d(norm);
          rec[norm]!.push(Number.isNaN(v) ? null : v);
        }
      };
      if (eps > 0 && pool.length > 0 && minimum) {
        // The distances of the example kept (the closest within the largest eps); in the run's
        // own norm the minimum stands in where that example lies beyond it.
        for (const i of pool) {
          if (!(minimum.minimum[i]! <= eps)) continue;
          record(i, (norm) => (Number.isFinite(minimum[norm][i]!) ? minimum[norm][i]! : norm === o.norm ? minimum.minimum[i]! : NaN));
        }
      } else if (eps > 0 && pool.length > 0) {
        const sub = subset(data, pool);
        const opts = { ...(spec.options ?? {}), eps, norm: o.norm, seed };
        for await (const b of attackDataset(spec.name, model, sub, opts as never, { batchSize, pool: o.pool })) {
          const r = b.result;
          const pixels = eps === maxEps ? await keepFrom(b, r) : undefined;
          for (let j = 0; j < b.end - b.start; j++) {
            if (r.success[j] !== 1) continue;
            const i = pool[b.start + j]!;
            record(i, (norm) => r.norms[norm][j]!);
            // A success at eps lies in the eps-ball by construction (its norm can round a hair past eps).
            found(i, Math.min(r.norms[o.norm][j]!, eps), spec.name);
            keepExample(pixels, i, j, r.predictions[j]!, spec.name, eps);
          }
          tf.dispose([b.x, r.adversarial]);
        }
      }
      rec.seconds = minimum && eps === epsilons.find((e) => e > 0) ? minimum.seconds : (performance.now() - t1) / 1000;
      row.push(rec);
      o.onProgress?.(`${spec.name} eps=${eps}`, ++done, total);
      await save();
    }
  }
  return { records: { labels: Array.from(data.labels), predictions: Array.from(clean), outcomes, distance: Array.from(distance, (d) => (Number.isFinite(d) ? d : null)), foundBy }, kept };
}

/**
 * The figures from per-example records: per eps and attack, the points attacked (in a cascade,
 * those still robust) and broken; the worst case per eps (an example counts as broken at eps
 * when any attack found an adversarial example within eps, at this eps or another); the
 * minimum-norm distances. A pure function, so a merge of shards gives the unsharded figures.
 */
export function summarizeRecords(records: EvaluationRecords, labels: ArrayLike<number>, classNames: readonly string[], c: { attacks: AttackSpec[]; epsilons: number[]; cascade: boolean; norm: NormName }) {
  const n = records.predictions.length;
  const cleanCorrect = Uint8Array.from(records.predictions, (p, i) => (p === labels[i] ? 1 : 0));
  const nCorrect = cleanCorrect.reduce((a, b) => a + b, 0);
  const distance = Float64Array.from(records.distance, (d) => (d === null ? Infinity : d));
  const results: EpsilonResult[] = [];
  const robustAt: Uint8Array[] = [];
  const finiteOnly = (v: Array<number | null>) => v.filter((x): x is number => x !== null && Number.isFinite(x));
  c.epsilons.forEach((eps, e) => {
    const robust = Uint8Array.from(cleanCorrect);
    const outcomes: AttackOutcome[] = c.attacks.map((spec, k) => {
      const attacked = eps > 0 ? robust.reduce((a, v, i) => a + ((c.cascade ? v : cleanCorrect[i]) === 1 ? 1 : 0), 0) : 0;
      const rec = records.outcomes[e]![k]!;
      for (const i of rec.broken) robust[i] = 0;
      const successes = rec.broken.length;
      return {
        attack: spec.name,
        attacked,
        successes,
        successRate: eps > 0 && attacked > 0 ? successes / attacked : null,
        robustAccuracy: (!c.cascade || k === 0) && n > 0 ? (nCorrect - successes) / n : null,
        robustAccuracyAfter: n > 0 ? robust.reduce((a, b) => a + b, 0) / n : 0,
        perturbation: { linf: stats(finiteOnly(rec.linf)), l2: stats(finiteOnly(rec.l2)), ...(rec.l1 ? { l1: stats(finiteOnly(rec.l1)) } : {}), ...(rec.l0 ? { l0: stats(finiteOnly(rec.l0)) } : {}) },
        seconds: rec.seconds,
      };
    });
    // The worst case counts every adversarial example found, at this eps or at another one
    // whose perturbation is within this eps.
    const worst = Uint8Array.from(robust, (v, i) => (v && distance[i]! > eps ? 1 : 0));
    robustAt.push(worst);
    const perClass = classNames.map((name, label) => {
      let count = 0;
      let ok = 0;
      for (let i = 0; i < n; i++) if (labels[i] === label) { count++; ok += worst[i]!; }
      return { label, name, examples: count, robustAccuracy: count ? ok / count : null };
    });
    results.push({ eps, attacks: outcomes, worstCase: { robustAccuracy: n > 0 ? worst.reduce((a, b) => a + b, 0) / n : 0, perClass } });
  });
  const minimumAttacks = c.attacks.filter((a) => MINIMUM_NORM_ATTACKS.includes(a.name)).map((a) => a.name);
  const minimumNorm = minimumAttacks.length > 0 && c.epsilons.some((e) => e > 0) ? {
    norm: c.norm,
    attacks: minimumAttacks,
    median: medianWithMissing(distance),
    found: Array.from(distance).filter((d, i) => cleanCorrect[i] === 0 || Number.isFinite(d)).length,
    distances: Array.from(distance, (d) => (Number.isFinite(d) ? d : null)),
    ...(records.foundBy ? { foundBy: records.foundBy.map((a, i) => (Number.isFinite(distance[i]!) && cleanCorrect[i] === 1 ? a : null)) } : {}),
  } : undefined;
  return { cleanCorrect, nCorrect, results, robustAt, minimumNorm };
}

/** Everything of a report but its figures, from the run's model, data and settings. */
export function reportFrame(model: Classifier, data: { name: string; examples: number; classNames: readonly string[] }, c: { preset?: PresetName; attacks: AttackSpec[]; epsilons: number[]; norm: NormName; seed: number; batchSize: number; cascade: boolean; checks: boolean; modelName?: string }) {
  return {
    schema: REPORT_SCHEMA_ID as typeof REPORT_SCHEMA_ID,
    version: REPORT_VERSION as typeof REPORT_VERSION,
    createdBy: { advkit: ADVKIT_VERSION, tfjs: tf.version_core, backend: backendStatus()?.name ?? tf.getBackend(), node: process.versions.node },
    model: { name: c.modelName ?? 'model', numClasses: model.numClasses, inputShape: [...model.inputShape], bounds: [model.bounds[0], model.bounds[1]] as [number, number], randomized: model.randomized, warnings: [...model.warnings], ...(model.output ? { output: { ...model.output } } : {}), ...(model.preprocessing ? { preprocessing: reportedPreprocessing(model.preprocessing) } : {}), ...(describeDefense(model) ? { defense: describeDefense(model) } : {}) },
    data: { name: data.name, examples: data.examples, classNames: [...data.classNames] },
    config: { preset: c.preset ?? null, attacks: c.attacks.map((a) => ({ name: a.name, options: { ...(a.options ?? {}) } })), epsilons: c.epsilons, norm: c.norm, seed: c.seed, batchSize: c.batchSize, cascade: c.cascade, checks: c.checks },
    threatModel: {
      description: threatText(c.norm, c.epsilons, c.attacks),
      knowledge: 'white-box' as const,
      norm: c.norm,
      epsilons: c.epsilons,
      targeted: false as const,
      catalogue: [
        { source: 'MITRE ATLAS', id: 'AML.T0043', name: 'Craft Adversarial Data' },
        { source: 'OWASP Machine Learning Security Top 10', id: 'ML01', name: 'Input Manipulation Attack' },
      ],
    },
    evaluation: { preset: c.preset ?? null, ...completeness(c.preset, c.attacks, model.randomized, c.norm) },
  };
}

/**
 * Evaluates `model` on `data` (or, with `shard`, on the shard's block of it: the report then
 * carries the per-example records `mergeReports` needs and leaves the sanity checks to the merge).
 */
export async function evaluateRobustness(model: Classifier, data: Dataset, options: EvaluateOptions): Promise<Evaluation> {
  const fn = 'evaluateRobustness';
  validateEvaluateOptions(fn, options);
  const o = { ...EVALUATE_DEFAULTS, ...defined(options) };
  const seed = checkFiniteNumber(fn, 'seed', o.seed, { integer: true, min: 0 });
  const batchSize = checkFiniteNumber(fn, 'batchSize', o.batchSize, { integer: true, min: 1 });
  checkShapes(fn, model.inputShape, data);
  const tooHigh = data.labels.findIndex((l) => l >= model.numClasses);
  check(tooHigh < 0, fn, () => `example ${tooHigh} of ${data.name} has label ${data.labels[tooHigh]} but the model has ${model.numClasses} classes (0..${model.numClasses - 1}).`);
  const { attacks, preset } = resolveAttacks(options);
  const t0 = performance.now();
  const epsilons = [...o.epsilons].sort((a, b) => a - b);
  const { start, end } = shardRange(size(data), o.shard);
  const part = slice(data, start, end);
  const { records, kept } = await attackPhase(model, part, attacks, epsilons, o, seed, batchSize);
  const s = summarizeRecords(records, part.labels, part.classNames, { attacks, epsilons, cascade: o.cascade, norm: o.norm });
  const runChecksHere = o.checks && !o.shard;
  const checks = runChecksHere ? await runChecks(model, part, s.cleanCorrect, s.results, { ...o, attacks, seed, batchSize, epsilons, pool: o.pool, robustAt: s.robustAt }) : [];
  const seconds = (performance.now() - t0) / 1000;
  const n = size(part);
  const report: RobustnessReport = {
    ...reportFrame(model, { name: data.name, examples: n, classNames: data.classNames }, { preset, attacks, epsilons, norm: o.norm, seed, batchSize, cascade: o.cascade, checks: o.checks, modelName: o.modelName }),
    cleanAccuracy: n > 0 ? s.nCorrect / n : 0,
    results: s.results,
    ...(s.minimumNorm ? { minimumNorm: s.minimumNorm } : {}),
    checks,
    timing: { seconds, examplesPerSecond: seconds > 0 ? (n * epsilons.length) / seconds : 0 },
    provenance: { model: o.modelDigest ?? null, data: { name: data.name, examples: size(data), sha256: datasetDigest(data) } },
    ...(o.shard ? { shard: { index: o.shard.index, count: o.shard.count, start, end, ...records, checkOptions: { checksLimit: o.checksLimit, squareQueries: o.squareQueries }, ...(o.shardSource ? { source: o.shardSource } : {}) } } : {}),
  };
  return { report, examples: kept.map((k) => ({ ...k, index: k.index + start })) };
}
