/** What `advkit eval` and `advkit merge` share: loading the model and data of a run, and presenting its report. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { take, type Dataset, type ResizeSpec } from '../data/index.js';
import type { Evaluation } from '../eval/evaluate.js';
import { checkAssertions, checkBaseline, junitXml, type Assertion, type GateResult } from '../eval/gate.js';
import { renderTable } from '../eval/render.js';
import { REPORT_JSON_SCHEMA, REPORT_SCHEMA_ID, type RobustnessReport } from '../eval/report.js';
import { schemaProblem } from '../eval/schema_check.js';
import type { Bounds, Classifier, Normalization } from '../models/classifier.js';
import { loadDataFor, loadModel } from './model_options.js';
import { InvalidArgumentError } from '../util/errors.js';
import { createPrivateKey } from 'node:crypto';
import { checkOwnOutput, LOCK_FILE, readRegularFile, writeFileAtomic } from '../util/fs.js';
import { attest, ATTESTATION_FILE, cycloneDxBom } from '../eval/attest.js';
import { log, printJson } from './common.js';
import { withDefense } from './defense_spec.js';
import { writeReportFiles } from './report_files.js';

/** Reads a --baseline report. */
export async function readBaseline(file: string): Promise<RobustnessReport> {
  let baseline: RobustnessReport;
  try {
    baseline = JSON.parse(await fsp.readFile(file, 'utf8')) as RobustnessReport;
  } catch (err) {
    throw new InvalidArgumentError(`Error in --baseline: cannot read ${file} as JSON (${(err as Error).message}).`);
  }
  if (baseline?.schema !== REPORT_SCHEMA_ID) throw new InvalidArgumentError(`Error in --baseline: ${file} is not an advkit robustness report (schema ${JSON.stringify(baseline?.schema)}).`);
  // The fields a comparison reads, of their types: a malformed baseline is bad input, not a crash.
  const acc = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;
  const ok = acc(baseline.cleanAccuracy) && typeof baseline.config?.norm === 'string' && Array.isArray(baseline.results)
    && baseline.results.every((r) => typeof r?.eps === 'number' && Number.isFinite(r.eps) && acc(r.worstCase?.robustAccuracy));
  if (!ok) throw new InvalidArgumentError(`Error in --baseline: ${file} is malformed (cleanAccuracy, config.norm and each result's eps and worstCase.robustAccuracy must be numbers); regenerate it with advkit eval --out.`);
  const problem = schemaProblem(baseline, REPORT_JSON_SCHEMA as Record<string, unknown>);
  if (problem) throw new InvalidArgumentError(`Error in --baseline: ${file} is malformed (${problem}); regenerate it with advkit eval --out.`);
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
  /** The head, preprocessing and resize the model and data were loaded with (absent in older shards: none). */
  head?: string | null;
  normalize?: Normalization | null;
  inputRange?: Bounds | null;
  resize?: ResizeSpec | null;
}

/** Loads the classifier (with its defense) and the data an evaluation runs on. */
export async function loadEvalSource(s: EvalSource): Promise<{ classifier: Classifier; data: Dataset }> {
  const { classifier: loaded, metadata } = await loadModel({ model: s.model, head: s.head ?? undefined, normalize: s.normalize ?? undefined, inputRange: s.inputRange ?? undefined });
  const classifier = withDefense(loaded, s);
  let data = await loadDataFor(s.data, classifier, s.resize ?? undefined, { split: 'test', dataDir: s.dataDir ?? undefined, classNames: metadata?.classNames });
  if (s.limit !== null) data = take(data, s.limit);
  return { classifier, data };
}

/** What `eval --out` and a report `merge --out` write into their directory. */
const REPORT_OUT_FILES = ['report.json', 'report.md', 'report.html', 'examples.png', '.state', ATTESTATION_FILE];

/** Reads a --attest signing key (before any computation: a bad key is exit 2 at once). */
export async function readSigningKey(file: string, flag = '--attest'): Promise<string> {
  const pem = (await readRegularFile(file, `Error in ${flag}: ${file}`, 64 * 1024)).toString('utf8');
  try {
    createPrivateKey(pem);
  } catch (err) {
    throw new InvalidArgumentError(`Error in ${flag}: ${file} is not a PEM private key (${(err as Error).message.split('\n')[0]}); give an Ed25519 or ECDSA P-256 key (openssl genpkey -algorithm ed25519 -out key.pem).`);
  }
  return pem;
}

/** Writes attestation.intoto.jsonl beside the report (with a key) and the CycloneDX BOM (with --bom). */
export async function writeAttestation(report: RobustnessReport, gates: GateResult[], o: { key?: string; bom?: string; out?: string }): Promise<void> {
  let attestationFile: string | undefined;
  if (o.key) {
    if (!o.out) throw new InvalidArgumentError('Error in --attest: give --out DIR; the attestation is written beside the report.');
    attestationFile = path.join(path.resolve(o.out), ATTESTATION_FILE);
    await writeFileAtomic(attestationFile, attest(report, { key: o.key, gates, reportFile: 'report.json' }).jsonl);
    log(`advkit: wrote ${attestationFile} (in-toto test-result and robustness statements, DSSE-signed)`);
  }
  if (o.bom) {
    await writeFileAtomic(o.bom, `${JSON.stringify(cycloneDxBom(report, attestationFile ? { attestation: path.relative(path.dirname(path.resolve(o.bom)), attestationFile) || ATTESTATION_FILE } : {}), null, 2)}\n`);
    log(`advkit: wrote the CycloneDX 1.6 BOM ${o.bom}`);
  }
}

/**
 * Refuses a report --out that holds anything but advkit's own report files (a directory with
 * the user's report.md is not overwritten): it must be new, empty, hold an advkit report.json,
 * or an unfinished run's .state/eval.json; .state holds nothing else. Checked before computing.
 */
export async function checkReportOut(dir: string): Promise<void> {
  const entries = (await fsp.readdir(dir).catch(() => [] as string[])).filter((e) => e !== LOCK_FILE && !e.includes('.tmp-'));
  if (entries.length === 0) return;
  await checkOwnOutput(dir, '--out', REPORT_OUT_FILES);
  const state = await fsp.readdir(path.join(dir, '.state')).catch(() => [] as string[]);
  const extra = state.filter((e) => e !== 'eval.json' && !e.includes('.tmp-'));
  const schema = await fsp.readFile(path.join(dir, 'report.json'), 'utf8').then((t) => (JSON.parse(t) as { schema?: unknown }).schema, () => undefined);
  if (extra.length || (schema !== REPORT_SCHEMA_ID && !state.includes('eval.json'))) {
    const what = extra.length ? `.state/${extra[0]}` : entries.includes('report.json') ? 'a report.json advkit did not write' : entries.slice(0, 3).join(', ');
    throw new InvalidArgumentError(`Error in --out: ${dir} holds files advkit did not write (${what}); advkit replaces only its own output; choose a new or empty directory.`);
  }
}

/** Writes the report files, runs the gates, prints the table or JSON; exit code 1 on a failed gate. */
export async function presentEvaluation(evaluation: Evaluation, data: Pick<Dataset, 'shape' | 'classNames'>, o: { out?: string; junit?: string; json?: boolean; maxDrop: number; assertions: Assertion[]; baseline?: RobustnessReport; backend: string; attestKey?: string; bom?: string }): Promise<void> {
  const { report } = evaluation;
  if (o.out) {
    const files = await writeReportFiles(path.resolve(o.out), evaluation, data);
    log(`advkit: wrote ${files.join(', ')}`);
  }
  const gates: GateResult[] = [...checkAssertions(report, o.assertions), ...(o.baseline ? checkBaseline(report, o.baseline, o.maxDrop) : [])];
  if (o.junit) await writeFileAtomic(o.junit, junitXml(gates));
  await writeAttestation(report, gates, { key: o.attestKey, bom: o.bom, out: o.out });
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

