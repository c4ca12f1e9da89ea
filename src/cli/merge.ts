/**
 * `advkit merge DIR... --out DIR`: joins the shards of one `advkit attack` or `advkit eval` run
 * (written with --shard i/N) into what the unsharded run writes (certify --out shards too). Example sets merge byte for
 * byte; reports merge to equal figures (timing aside), with the sanity checks run once here on
 * the whole set (model and data loaded from what the shards recorded, or --model/--data-dir,
 * and checked against their digests) and the gates (--assert, --baseline, --junit) judged on
 * the merged report. Missing, duplicate, unfinished or mixed shards exit 2.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { EXAMPLE_SET_SCHEMA, mergeExampleSets } from '../attacks/example_set.js';
import { CERTIFICATION_SCHEMA, mergeCertifications } from '../defenses/certification.js';
import { printCertified } from './certify.js';
import { checkAssertionsFit, checkBaselineFits, parseAssertion } from '../eval/gate.js';
import { mergeReports } from '../eval/merge.js';
import { REPORT_JSON_SCHEMA, REPORT_SCHEMA_ID, type RobustnessReport } from '../eval/report.js';
import { schemaProblem } from '../eval/schema_check.js';
import { InvalidArgumentError } from '../util/errors.js';
import { action, checkedModelDigest, floatOption, log, printJson, startBackend, startPool, withCommonOptions, withWorkersOption } from './common.js';
import { checkReportOut, loadEvalSource, presentEvaluation, readBaseline, readSigningKey, type EvalSource } from './eval_run.js';
import { checkWritableFile } from '../util/fs.js';

interface MergeCliOptions {
  out: string;
  model?: string;
  dataDir?: string;
  checks: boolean;
  assert: string[];
  baseline?: string;
  maxDrop: number;
  junit?: string;
  attest?: string;
  bom?: string;
  workers?: number;
  backend?: string;
  json?: boolean;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`Error in merge: cannot read ${file} as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give shard directories written by advkit attack or eval --shard.`);
  }
}

/** What a shard directory holds: an example set (run.json) or a report (report.json). */
async function kindOf(dir: string): Promise<'example-set' | 'report' | 'certification'> {
  const stat = await fsp.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new InvalidArgumentError(`Error in merge: ${dir} is not a directory; give the shards' output directories.`);
  const run = await fsp.readFile(path.join(dir, 'run.json'), 'utf8').then((t) => JSON.parse(t) as { schema?: string }, () => undefined);
  if (run?.schema === EXAMPLE_SET_SCHEMA) return 'example-set';
  const report = await fsp.readFile(path.join(dir, 'report.json'), 'utf8').then((t) => JSON.parse(t) as { schema?: string }, () => undefined);
  if (report?.schema === REPORT_SCHEMA_ID) return 'report';
  const cert = await fsp.readFile(path.join(dir, 'certify.json'), 'utf8').then((t) => JSON.parse(t) as { schema?: string }, () => undefined);
  if (cert?.schema === CERTIFICATION_SCHEMA) return 'certification';
  throw new InvalidArgumentError(`Error in merge: ${dir} holds no advkit example set (run.json), report (report.json) or certification (certify.json).`);
}

export function mergeCommand(): Command {
  return withWorkersOption(withCommonOptions(new Command('merge'))
    .argument('<dirs...>', 'the shard output directories (all N of them)')
    .requiredOption('--out <dir>', 'where to write the merged example set or report (new or empty)')
    .option('--model <dir>', 'reports: the model for the sanity checks, when not at the path the shards recorded (its SHA-256 must match)')
    .option('--data-dir <dir>', 'reports: folder of the IDX files, when not where the shards found them')
    .option('--no-checks', 'reports: do not run the sanity checks (the report says so)')
    .option('--assert <gate>', 'reports: gate on the merged report, as in advkit eval (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--baseline <report.json>', 'reports: fail when an accuracy drops more than --max-drop below this report')
    .option('--max-drop <f>', 'allowed drop against the baseline', floatOption(0, { max: 1 }), 0.02)
    .option('--junit <file>', 'reports: write the gate results as JUnit XML')
    .option('--attest <key.pem>', 'reports: sign in-toto statements of the merged verdict and figures (attestation.intoto.jsonl in --out)')
    .option('--bom <file>', 'reports: write a CycloneDX 1.6 ML-BOM of the merged report'))
    .action(action(async (dirs: string[], o: MergeCliOptions) => {
      const kinds = await Promise.all(dirs.map(kindOf));
      if (new Set(kinds).size > 1) throw new InvalidArgumentError(`Error in merge: the directories mix example sets and reports (${dirs.map((d, i) => `${d}: ${kinds[i]}`).join(', ')}).`);
      if (dirs.some((d) => path.resolve(d) === path.resolve(o.out))) throw new InvalidArgumentError(`Error in --out: ${o.out} is one of the shards; write the merge elsewhere.`);
      if (kinds[0] === 'example-set') {
        if (o.assert.length || o.baseline || o.junit || o.model || o.attest || o.bom) throw new InvalidArgumentError('Error in merge: --assert, --baseline, --junit, --attest, --bom and --model apply to reports; these are example sets.');
        const summary = await mergeExampleSets(dirs, o.out);
        log(`advkit: merged ${dirs.length} shards (${summary.examples} examples) into ${path.resolve(o.out)}`);
        return o.json ? printJson({ ...summary, out: path.resolve(o.out) }) : void process.stdout.write(`${summary.attack} (${summary.norm}, eps ${summary.eps}) on ${summary.examples} examples: robust accuracy ${(100 * summary.robustAccuracy).toFixed(2)}%, attack success ${(100 * summary.successRate).toFixed(2)}%; written to ${path.resolve(o.out)}\n`);
      }
      if (kinds[0] === 'certification') {
        if (o.assert.length || o.baseline || o.junit || o.model) throw new InvalidArgumentError('Error in merge: --assert, --baseline, --junit and --model apply to reports; these are certifications.');
        const merged = await mergeCertifications(dirs, o.out);
        log(`advkit: merged ${dirs.length} shards (${merged.examples} certificates) into ${path.resolve(o.out)}`);
        return o.json ? printJson({ ...merged.config, examples: merged.examples, abstained: merged.abstained, certified: merged.certified, out: path.resolve(o.out) }) : printCertified(merged.config, merged, merged.provenance.data.name);
      }
      const assertions = o.assert.map(parseAssertion);
      const baseline = o.baseline ? await readBaseline(o.baseline) : undefined;
      await checkReportOut(path.resolve(o.out));
      if (o.junit) await checkWritableFile(o.junit, '--junit');
      const attestKey = o.attest ? await readSigningKey(o.attest) : undefined;
      if (o.bom) await checkWritableFile(o.bom, '--bom');
      const reports = await Promise.all(dirs.map(async (d) => (await readJson(path.join(d, 'report.json'))) as RobustnessReport));
      // A shard may come from another machine: its report must be an advkit report before any field is used.
      for (const [i, r] of reports.entries()) {
        const problem = schemaProblem(r, REPORT_JSON_SCHEMA as Record<string, unknown>);
        if (problem) throw new InvalidArgumentError(`Error in merge: ${path.join(dirs[i]!, 'report.json')} is not a valid advkit report (${problem}); the shard is corrupt or was edited.`);
      }
      const status = await startBackend(o.backend);
      const first = reports[0]!;
      checkAssertionsFit(assertions, { attacks: (first.config?.attacks ?? []).map((a) => a.name), epsilons: (first.results ?? []).map((r) => r.eps) });
      if (baseline) checkBaselineFits(baseline, { norm: first.config?.norm, epsilons: (first.results ?? []).map((r) => r.eps), dataSha256: first.provenance?.data?.sha256 }, o.baseline);
      let inputs;
      let pool;
      if (o.checks && first.config?.checks && first.shard?.source) {
        const source = { ...(first.shard.source as unknown as EvalSource), ...(o.model ? { model: path.resolve(o.model) } : {}), ...(o.dataDir ? { dataDir: path.resolve(o.dataDir) } : {}) };
        await checkedModelDigest(source.model, first.provenance?.model?.sha256);
        const { classifier, data } = await loadEvalSource(source);
        inputs = { model: classifier, data };
        log('advkit: running the sanity checks once, on the whole set');
        pool = await startPool(classifier, o.workers, first.shard.checkOptions.checksLimit, first.config.batchSize, status.name);
      }
      let evaluation;
      try {
        evaluation = await mergeReports(reports, { ...inputs, pool, names: dirs });
      } finally {
        await pool?.close();
      }
      await presentEvaluation(evaluation, { shape: first.model.inputShape as [number, number, number], classNames: first.data.classNames }, { out: o.out, junit: o.junit, json: o.json, maxDrop: o.maxDrop, assertions, baseline, backend: status.name, attestKey, bom: o.bom });
    }));
}
