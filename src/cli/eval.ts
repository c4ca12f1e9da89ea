/**
 * `advkit eval`: evaluates a model's robustness (attacks x epsilons, cascade worst case, sanity
 * checks), prints a table (or --json), writes report files with --out, and gates CI with
 * --assert, --baseline/--max-drop and --junit. Exit codes: 0 all gates pass, 1 a gate
 * failed, 2 bad usage or input.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ATTACK_NAMES, type AttackName } from '../attacks/registry.js';
import { datasetDigest, loadDataset, parseDataSpec, take, type Dataset } from '../data/index.js';
import type { Classifier } from '../models/classifier.js';
import { resolveShard, shardName, shardRange } from '../util/shard.js';
import { evaluateRobustness, resolveAttacks, validateEvaluateOptions, type AttackSpec, type EvaluateOptions, type Evaluation, type EvaluationCheckpoint } from '../eval/evaluate.js';
import { PRESET_NAMES, type PresetName } from '../eval/presets.js';
import { checkAssertions, checkBaseline, junitXml, parseAssertion, type Assertion, type GateResult } from '../eval/gate.js';
import { renderTable } from '../eval/render.js';
import { REPORT_SCHEMA_ID, type RobustnessReport } from '../eval/report.js';
import { loadClassifier } from '../models/io.js';
import { defend, withGradient } from '../defenses/preprocess.js';
import { parseDefense } from './defense_spec.js';
import { InvalidArgumentError } from '../util/errors.js';
import { jsonCheckpoint, lockDirectory, writeFileAtomic } from '../util/fs.js';
import { progressBar } from '../util/progress.js';
import { action, checkedModelDigest, floatOption, intOption, log, printJson, startBackend, startPool, withCommonOptions, withShardOptions, withWorkersOption } from './common.js';
import { writeReportFiles } from './report_files.js';

interface EvalCliOptions {
  model?: string;
  data?: string;
  attacks?: string;
  preset?: PresetName;
  eps?: string;
  norm?: 'linf' | 'l2';
  steps?: number;
  restarts?: number;
  loss?: string;
  squareQueries?: number;
  seed?: number;
  limit?: number;
  batchSize?: number;
  cascade?: boolean;
  checks?: boolean;
  checksLimit?: number;
  out?: string;
  assert: string[];
  baseline?: string;
  maxDrop: number;
  junit?: string;
  config?: string;
  workers?: number;
  defense?: string;
  defenseGradient?: 'auto' | 'exact' | 'bpda';
  eot?: number;
  dataDir?: string;
  backend?: string;
  json?: boolean;
  shard?: string;
  shardCount?: number;
  expectModelSha256?: string;
}

/** Keys a --config file may hold (the long option names in camelCase). */
const CONFIG_KEYS = ['defense', 'defenseGradient', 'eot', 'model', 'data', 'attacks', 'preset', 'eps', 'norm', 'steps', 'restarts', 'loss', 'squareQueries', 'seed', 'limit', 'batchSize', 'cascade', 'checks', 'checksLimit', 'out', 'assert', 'baseline', 'maxDrop', 'junit', 'dataDir'] as const;

/** The JSON type each --config key must have. */
const CONFIG_TYPES: Record<(typeof CONFIG_KEYS)[number], 'string' | 'integer' | 'number' | 'boolean' | 'string[]'> = {
  defense: 'string', defenseGradient: 'string', eot: 'integer', model: 'string', data: 'string', attacks: 'string', preset: 'string', eps: 'string', norm: 'string',
  steps: 'integer', restarts: 'integer', loss: 'string', squareQueries: 'integer', seed: 'integer', limit: 'integer', batchSize: 'integer', cascade: 'boolean', checks: 'boolean',
  checksLimit: 'integer', out: 'string', assert: 'string[]', baseline: 'string', maxDrop: 'number', junit: 'string', dataDir: 'string',
};

async function readConfig(file: string): Promise<Partial<EvalCliOptions>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`Error in --config: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`Error in --config: ${file} is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InvalidArgumentError(`Error in --config: ${file} must hold a JSON object of options, e.g. {"model": "m", "eps": [0.1, 0.3]}, not ${JSON.stringify(json)?.slice(0, 40)}.`);
  const unknown = Object.keys(json).filter((k) => !(CONFIG_KEYS as readonly string[]).includes(k));
  if (unknown.length) throw new InvalidArgumentError(`Error in --config: ${file} has unknown key(s) ${unknown.join(', ')}; allowed: ${CONFIG_KEYS.join(', ')}.`);
  const out = { ...json } as Record<string, unknown>;
  // Lists may be arrays in JSON.
  for (const k of ['attacks', 'eps'] as const) if (Array.isArray(out[k])) out[k] = (out[k] as unknown[]).join(',');
  if (typeof out.eps === 'number') out.eps = String(out.eps);
  if (typeof out.assert === 'string') out.assert = [out.assert];
  for (const [k, v] of Object.entries(out)) {
    const want = CONFIG_TYPES[k as keyof typeof CONFIG_TYPES];
    const ok = want === 'integer' ? Number.isInteger(v) : want === 'number' ? typeof v === 'number' && Number.isFinite(v) : want === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof v === want;
    if (!ok) throw new InvalidArgumentError(`Error in --config: "${k}" in ${file} must be ${want === 'string[]' ? 'a list of strings' : `a ${want}`}, got ${JSON.stringify(v)}.`);
  }
  return out as Partial<EvalCliOptions>;
}

function parseEpsilons(text: string): number[] {
  const vals = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!vals.length || vals.some((v) => !Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(`Error in --eps: ${JSON.stringify(text)} must be a comma list of numbers >= 0, e.g. 0,0.1,0.2,0.3.`);
  return vals;
}

/** Applies --steps, --restarts, --loss and --square-queries to the attacks they concern. */
function withFlags(specs: AttackSpec[], o: EvalCliOptions): AttackSpec[] {
  return specs.map(({ name, options: given }) => {
    const options: Record<string, unknown> = { ...(given ?? {}) };
    const loop = name !== 'fgsm' && name !== 'square';
    if (loop && o.steps !== undefined) options.steps = o.steps;
    if ((name === 'pgd' || name.startsWith('apgd') || name === 'fab-t') && o.restarts !== undefined) options.restarts = o.restarts;
    if (['fgsm', 'bim', 'pgd', 'mifgsm'].includes(name) && o.loss !== undefined) options.loss = o.loss;
    if (name === 'square' && o.squareQueries !== undefined) options.queries = o.squareQueries;
    return { name, options };
  });
}

function parseAttacks(text: string): AttackSpec[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.find((n) => !(ATTACK_NAMES as string[]).includes(n));
  if (bad !== undefined || names.length === 0) throw new InvalidArgumentError(`Error in --attacks: unknown attack ${JSON.stringify(bad ?? text)}; use a comma list of ${ATTACK_NAMES.join(', ')}.`);
  return names.map((name) => ({ name: name as AttackName, options: {} }));
}

export function evalCommand(): Command {
  return withShardOptions(withWorkersOption(withCommonOptions(new Command('eval').description('evaluate robustness: attacks x epsilons, worst case, sanity checks, reports and CI gates'))
    .option('--model <dir>', 'model directory')
    .option('--data <spec>', 'data spec (default split: test)')
    .option('--attacks <list>', `comma list of ${ATTACK_NAMES.join(', ')}, run in this order (instead of --preset)`)
    .addOption(new Option('--preset <name>', 'fixed ensemble: standard (AutoAttack: apgd-ce, apgd-t, fab-t, square-5000; the default), rand (randomized models), fast (CI)').choices([...PRESET_NAMES]))
    .option('--eps <list>', 'comma list of epsilons, e.g. 0,0.1,0.2,0.3')
    .addOption(new Option('--norm <norm>', 'threat model').choices(['linf', 'l2']))
    .option('--steps <n>', 'steps of the iterative attacks (changes a preset: partial evaluation)', intOption(1, 100_000))
    .option('--restarts <n>', 'restarts of pgd, apgd-* and fab-t', intOption(1, 1000))
    .addOption(new Option('--loss <loss>', 'objective of the gradient attacks').choices(['ce', 'margin', 'dlr']))
    .option('--square-queries <n>', 'queries of the square attack', intOption(1, 1_000_000))
    .option('--seed <n>', 'seed', intOption(0, 2 ** 31 - 1))
    .option('--limit <n>', 'evaluate the first n examples', intOption(1))
    .option('--batch-size <n>', 'batch size', intOption(1, 65_536))
    .option('--no-cascade', 'run every attack on every clean-correct point (slower; exact per-attack figures)')
    .option('--no-checks', 'skip the sanity checks')
    .option('--checks-limit <n>', 'examples the sanity checks use', intOption(1))
    .option('--out <dir>', 'write report.json, report.md, report.html and examples.png here')
    .option('--assert <gate>', 'gate, e.g. "pgd@0.3>=0.85", "worst@0.3>=80%", "clean>=0.98" (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--baseline <report.json>', 'fail when an accuracy drops more than --max-drop below this report')
    .option('--max-drop <f>', 'allowed drop against the baseline', floatOption(0, { max: 1 }), 0.02)
    .option('--junit <file>', 'write the gate results as JUnit XML')
    .option('--config <file>', 'robustness.json with any of the options above (flags win)')
    .option('--defense <list>', 'preprocessing defense in front of the model: comma list of bit-depth:B, median:K, jpeg:Q, tv:WEIGHT, noise:SIGMA')
    .addOption(new Option('--defense-gradient <mode>', 'how attacks differentiate the defense: auto (BPDA where not differentiable, EOT where random), exact (naive: shows the illusion), bpda').choices(['auto', 'exact', 'bpda']).default('auto'))
    .option('--eot <n>', 'draws averaged per call for randomized defenses', intOption(1, 1000))
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')))
    .action(action(async (flags: EvalCliOptions, cmd: Command) => {
      // Flags given on the command line win over the config file.
      const fromConfig = flags.config ? await readConfig(flags.config) : {};
      const o = { ...flags } as EvalCliOptions;
      for (const [k, v] of Object.entries(fromConfig)) {
        const src = cmd.getOptionValueSource(k);
        if (src === undefined || src === 'default') (o as unknown as Record<string, unknown>)[k] = v;
      }
      if (!o.model) throw new InvalidArgumentError('Error in --model: required (give --model DIR or "model" in --config).');
      if (!o.data) throw new InvalidArgumentError('Error in --data: required (give --data SPEC or "data" in --config).');
      if (!o.eps) throw new InvalidArgumentError('Error in --eps: required (give --eps 0,0.1,0.2,0.3 or "eps" in --config).');
      parseDataSpec(o.data);
      const assertions = (o.assert ?? []).map(parseAssertion);
      const epsilons = parseEpsilons(o.eps);
      if (o.attacks !== undefined && o.preset !== undefined) throw new InvalidArgumentError(`Error in --preset: give --preset ${o.preset} or --attacks ${o.attacks}, not both.`);
      if (o.preset !== undefined && !(PRESET_NAMES as readonly string[]).includes(o.preset)) throw new InvalidArgumentError(`Error in --preset: unknown preset ${JSON.stringify(o.preset)}; use one of ${PRESET_NAMES.join(', ')}.`);
      const resolved = resolveAttacks({ attacks: o.attacks !== undefined ? parseAttacks(o.attacks) : undefined, preset: o.preset });
      const attacks = withFlags(resolved.attacks, o);
      const changed = resolved.preset !== undefined && JSON.stringify(attacks) !== JSON.stringify(resolved.attacks);
      // An untouched preset is named as such; flags that change its attacks make it a list.
      const choice = resolved.preset !== undefined && !changed ? { preset: resolved.preset } : { attacks };
      if (changed) log(`advkit: --steps/--restarts/--square-queries change the ${resolved.preset} preset; the report will call it a partial evaluation`);
      const evalOptions: EvaluateOptions = { ...choice, epsilons, norm: o.norm ?? 'linf', seed: o.seed, batchSize: o.batchSize, cascade: o.cascade, checks: o.checks, checksLimit: o.checksLimit, squareQueries: o.squareQueries, keepExamples: o.out ? 8 : 0, modelName: path.basename(path.resolve(o.model)) };
      validateEvaluateOptions('advkit eval', evalOptions);
      const baseline = o.baseline ? await readBaseline(o.baseline) : undefined;
      const shard = resolveShard(o.shard, o.shardCount);
      if (shard && !o.out) throw new InvalidArgumentError(`Error in --shard: a shard's report is for advkit merge; give --out DIR to write it.`);
      if (shard && (assertions.length || o.baseline || o.junit)) throw new InvalidArgumentError('Error in --shard: gates (--assert, --baseline, --junit) judge the whole set; give them to advkit merge instead.');
      const status = await startBackend(o.backend);
      const source: EvalSource = { model: path.resolve(o.model), data: o.data, limit: o.limit ?? null, dataDir: o.dataDir ?? null, defense: o.defense ?? null, defenseGradient: o.defenseGradient ?? null, eot: o.eot ?? null, seed: o.seed ?? 0 };
      const digest = await checkedModelDigest(o.model, o.expectModelSha256);
      const { classifier, data } = await loadEvalSource(source);
      if (shard) {
        const { start, end } = shardRange(data.labels.length, shard);
        log(`advkit: shard ${shardName(shard)}: examples ${start}..${end - 1} of ${data.labels.length}; the sanity checks run at the merge`);
      }
      // One writer per output directory, found writable before any computation.
      const release = o.out ? await lockDirectory(path.resolve(o.out), '--out') : undefined;
      // With --out, progress is saved after each attack at each eps: a killed run resumes.
      const runKey = JSON.stringify({ evalOptions, shard, model: digest.sha256, data: datasetDigest(data), source: { ...source, model: undefined } });
      const checkpoint = o.out ? jsonCheckpoint<EvaluationCheckpoint>(path.join(path.resolve(o.out), '.state', 'eval.json'), runKey) : undefined;
      try {
        const resumed = await checkpoint?.load();
        if (resumed) log(`advkit: resuming the evaluation after ${resumed.steps} of ${epsilons.length * attacks.length} steps`);
        const bar = progressBar('eval [{bar}] {value}/{total} {step} | ETA {eta_formatted}');
        bar.start(epsilons.length * attacks.length, { step: '' });
        // Worker threads load the bare model, so a defended model is attacked in this thread.
        const pool = o.defense ? undefined : await startPool(o.model, o.workers, data.labels.length, o.batchSize ?? 128, status.name);
        let evaluation;
        try {
          evaluation = await evaluateRobustness(classifier, data, { ...evalOptions, pool, shard, modelDigest: digest, shardSource: shard ? { ...source } : undefined, checkpoint, onProgress: (msg, done) => bar.update(done, { step: msg }) });
        } finally {
          bar.stop();
          await pool?.close();
        }
        await presentEvaluation(evaluation, data, { ...o, assertions, baseline, backend: status.name });
        if (o.out) await fsp.rm(path.join(path.resolve(o.out), '.state'), { recursive: true, force: true });
      } finally {
        await release?.();
      }
    }));
}

/** Reads a --baseline report. */
export async function readBaseline(file: string): Promise<RobustnessReport> {
  let baseline: RobustnessReport;
  try {
    baseline = JSON.parse(await fsp.readFile(file, 'utf8')) as RobustnessReport;
  } catch (err) {
    throw new InvalidArgumentError(`Error in --baseline: cannot read ${file} as JSON (${(err as Error).message}).`);
  }
  if (baseline?.schema !== REPORT_SCHEMA_ID) throw new InvalidArgumentError(`Error in --baseline: ${file} is not an advkit robustness report (schema ${JSON.stringify(baseline?.schema)}).`);
  return baseline;
}

/** Where an evaluation's model and data come from: recorded in a shard's report for the merge. */
export interface EvalSource {
  model: string;
  data: string;
  limit: number | null;
  dataDir: string | null;
  defense: string | null;
  defenseGradient: 'auto' | 'exact' | 'bpda' | null;
  eot: number | null;
  seed: number;
}

/** Loads the classifier (with its defense) and the data an evaluation runs on. */
export async function loadEvalSource(s: EvalSource): Promise<{ classifier: Classifier; data: Dataset }> {
  const { classifier: loaded, metadata } = await loadClassifier(s.model);
  const classifier = s.defense ? defend(loaded, parseDefense(s.defense, s.seed).map((p) => (s.defenseGradient && s.defenseGradient !== 'auto' ? withGradient(p, s.defenseGradient) : p)), { eot: s.eot ?? undefined }) : loaded;
  let data = await loadDataset(s.data, { split: 'test', dataDir: s.dataDir ?? undefined, classNames: metadata?.classNames });
  if (s.limit !== null) data = take(data, s.limit);
  return { classifier, data };
}

/** Writes the report files, runs the gates, prints the table or JSON; exit code 1 on a failed gate. */
export async function presentEvaluation(evaluation: Evaluation, data: Pick<Dataset, 'shape' | 'classNames'>, o: { out?: string; junit?: string; json?: boolean; maxDrop: number; assertions: Assertion[]; baseline?: RobustnessReport; backend: string }): Promise<void> {
  const { report } = evaluation;
  if (o.out) {
    const files = await writeReportFiles(path.resolve(o.out), evaluation, data);
    log(`advkit: wrote ${files.join(', ')}`);
  }
  const gates: GateResult[] = [...checkAssertions(report, o.assertions), ...(o.baseline ? checkBaseline(report, o.baseline, o.maxDrop) : [])];
  if (o.junit) await writeFileAtomic(o.junit, junitXml(gates));
  if (o.json) printJson({ report: report.shard ? { ...report, shard: { index: report.shard.index, count: report.shard.count, start: report.shard.start, end: report.shard.end } } : report, gates });
  else {
    process.stdout.write(renderTable(report));
    for (const g of gates) process.stdout.write(`${g.passed ? 'PASS' : 'FAIL'} ${g.name}: ${g.message}\n`);
  }
  log(`advkit: evaluated ${report.data.name} (${report.data.examples} examples) on the ${o.backend} backend in ${report.timing.seconds.toFixed(1)} s`);
  if (gates.some((g) => !g.passed)) {
    process.exitCode = 1;
    log(`advkit: ${gates.filter((g) => !g.passed).length} of ${gates.length} gate(s) failed`);
  }
}
