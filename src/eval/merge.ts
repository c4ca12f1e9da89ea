/**
 * Joins the reports of a sharded evaluation (`evaluateRobustness` with `shard`, `advkit eval
 * --shard i/N`) into the report one unsharded run writes: the shards' per-example records are
 * concatenated in data order and the figures recomputed by the same function the evaluator uses
 * (summarizeRecords), so every figure is equal; only timing differs (the shards' seconds add up).
 *
 * The sanity checks run once, here, on the whole set: given the model and the data (checked
 * against the digests the shards recorded), the merge runs them as the unsharded evaluator
 * would. Without a model the merged report says the checks did not run.
 */
import { datasetDigest, size, type Dataset } from '../data/dataset.js';
import type { AttackPool } from '../attacks/pool.js';
import type { Classifier } from '../models/classifier.js';
import { InvalidArgumentError } from '../util/errors.js';
import { checkShards } from '../util/shard.js';
import { runChecks } from './checks.js';
import { summarizeRecords, type AttackSpec, type Evaluation } from './evaluate.js';
import { REPORT_SCHEMA_ID, type EvaluationRecords, type RobustnessReport, type SanityCheck } from './report.js';
import { LATER_NORMS } from '../util/norms.js';

export interface MergeReportsOptions {
  /** Model and data of the run, to run the sanity checks once on the whole set. */
  model?: Classifier;
  data?: Dataset;
  pool?: AttackPool;
  /** Names of the shards (directories or files), for error messages. */
  names?: string[];
}

/** The per-example records of the shards, concatenated in data order. */
function concatRecords(parts: Array<EvaluationRecords & { start: number }>): EvaluationRecords {
  const first = parts[0]!;
  // L1 and L0 distances and who found each distance are kept only when every shard recorded them.
  const later = LATER_NORMS.filter((norm) => parts.every((p) => p.outcomes.every((row) => row.every((rec) => rec[norm] !== undefined))));
  const withFoundBy = parts.every((p) => p.foundBy !== undefined);
  const out: EvaluationRecords = {
    labels: [], predictions: [], distance: [], ...(withFoundBy ? { foundBy: [] } : {}),
    outcomes: first.outcomes.map((row) => row.map(() => ({ broken: [], linf: [], l2: [], ...Object.fromEntries(later.map((norm) => [norm, []])), seconds: 0 }))),
  };
  for (const p of parts) {
    out.labels.push(...p.labels);
    out.predictions.push(...p.predictions);
    out.distance.push(...p.distance);
    if (withFoundBy) out.foundBy!.push(...p.foundBy!);
    p.outcomes.forEach((row, e) => row.forEach((rec, k) => {
      const o = out.outcomes[e]![k]!;
      o.broken.push(...rec.broken.map((i) => i + p.start));
      o.linf.push(...rec.linf);
      o.l2.push(...rec.l2);
      for (const norm of later) o[norm]!.push(...rec[norm]!);
      o.seconds += rec.seconds;
    }));
  }
  return out;
}

export async function mergeReports(reports: RobustnessReport[], options: MergeReportsOptions = {}): Promise<Evaluation> {
  const names = options.names ?? reports.map((_, i) => `report ${i}`);
  const identity = (r: RobustnessReport) => JSON.stringify({ config: r.config, checks: r.shard?.checkOptions, model: r.model, data: r.data.name, classes: r.data.classNames, provenance: r.provenance, backend: r.createdBy?.backend, advkit: r.createdBy?.advkit });
  const shards = checkShards(reports.map((r, i) => ({ dir: names[i]!, shard: r?.shard, complete: true, identity: identity(r), schema: r?.schema, report: r })), REPORT_SCHEMA_ID, 'robustness report');
  const first = shards[0]!.report;
  const total = first.provenance?.data.examples ?? shards.reduce((a, s) => a + (s.report.shard!.end - s.report.shard!.start), 0);
  shards.forEach((s, i) => {
    const sh = s.report.shard!;
    const want = { start: Math.floor((i * total) / sh.count), end: Math.floor(((i + 1) * total) / sh.count) };
    if (sh.start !== want.start || sh.end !== want.end || sh.labels.length !== sh.end - sh.start) throw new InvalidArgumentError(`Error in merge: shard ${i}/${sh.count} in ${s.dir} holds examples ${sh.start}..${sh.end - 1} but a run of ${total} examples puts ${want.start}..${want.end - 1} there; the shard is corrupt or from another run.`);
  });
  const records = concatRecords(shards.map((s) => s.report.shard!));
  const attacks = first.config.attacks as AttackSpec[];
  const c = { attacks, epsilons: first.config.epsilons, cascade: first.config.cascade, norm: first.config.norm };
  const s = summarizeRecords(records, records.labels, first.data.classNames, c);
  let checks: SanityCheck[] = [];
  let checkSeconds = 0;
  if (first.config.checks) {
    if (options.model && options.data) {
      const digest = datasetDigest(options.data);
      if (first.provenance && digest !== first.provenance.data.sha256) throw new InvalidArgumentError(`Error in merge: the data given for the sanity checks has SHA-256 ${digest}, but the shards evaluated ${first.provenance.data.sha256}; give the data the shards ran on.`);
      if (size(options.data) !== total) throw new InvalidArgumentError(`Error in merge: the data given for the sanity checks has ${size(options.data)} examples, the shards ${total}.`);
      const t0 = performance.now();
      checks = await runChecks(options.model, options.data, s.cleanCorrect, s.results, {
        attacks, norm: first.config.norm, seed: first.config.seed, batchSize: first.config.batchSize, epsilons: first.config.epsilons,
        checksLimit: first.shard!.checkOptions.checksLimit, squareQueries: first.shard!.checkOptions.squareQueries, cascade: first.config.cascade, pool: options.pool, robustAt: s.robustAt,
      });
      checkSeconds = (performance.now() - t0) / 1000;
    } else {
      checks = [{ id: 'checks-not-run', status: 'warn', message: 'The sanity checks did not run: the shards leave them to the merge, which ran without the model (--no-checks, or no model given).', suggestion: 'Merge with the model and data at hand (advkit merge loads them from what the shards recorded, or from --model) to run the checks once on the whole set.' }];
    }
  }
  const seconds = shards.reduce((a, x) => a + x.report.timing.seconds, 0) + checkSeconds;
  // The evaluator's key order, so the JSON reads the same.
  const report: RobustnessReport = {
    schema: first.schema, version: first.version, createdBy: first.createdBy, model: first.model,
    data: { ...first.data, examples: total }, config: first.config, threatModel: first.threatModel,
    ...(first.evaluation ? { evaluation: first.evaluation } : {}),
    cleanAccuracy: total > 0 ? s.nCorrect / total : 0,
    results: s.results,
    ...(s.minimumNorm ? { minimumNorm: s.minimumNorm } : {}),
    checks,
    timing: { seconds, examplesPerSecond: seconds > 0 ? (total * first.config.epsilons.length) / seconds : 0 },
    ...(first.provenance ? { provenance: first.provenance } : {}),
  };
  return { report, examples: [] };
}
