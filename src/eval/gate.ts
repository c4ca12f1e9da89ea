/**
 * CI gates on a report: assertions such as `pgd@0.3>=0.85`, `worst@0.3>=0.8` or
 * `clean>=0.98`, and a baseline comparison (no robust accuracy may drop by more than maxDrop).
 * Results can be written as JUnit XML for CI dashboards.
 */
import { InvalidArgumentError } from '../util/errors.js';
import type { RobustnessReport } from './report.js';

export interface Assertion {
  text: string;
  /** 'clean', 'worst', or an attack name. */
  metric: string;
  eps?: number;
  op: '>=' | '>' | '<=' | '<';
  value: number;
}

export interface GateResult {
  name: string;
  passed: boolean;
  message: string;
}

const ASSERTION = /^\s*([a-z][a-z0-9-]*)(?:@([0-9]*\.?[0-9]+(?:e-?\d+)?))?\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)(%?)\s*$/i;

/** Parses `metric[@eps] op value` (value a fraction, or a percentage with %). */
export function parseAssertion(text: string): Assertion {
  const m = ASSERTION.exec(text);
  if (!m) throw new InvalidArgumentError(`Error in --assert: cannot parse ${JSON.stringify(text)}; write METRIC@EPS>=VALUE, e.g. "pgd@0.3>=0.85", "worst@0.3>=80%" or "clean>=0.98".`);
  const metric = m[1]!.toLowerCase();
  let value = Number(m[4]);
  if (m[5] === '%') value /= 100;
  if (!(value >= 0 && value <= 1)) throw new InvalidArgumentError(`Error in --assert: ${JSON.stringify(text)} compares with ${value}, but accuracies are fractions in [0, 1] (or percentages with %).`);
  if (metric !== 'clean' && m[2] === undefined) throw new InvalidArgumentError(`Error in --assert: ${JSON.stringify(text)} needs an epsilon: ${metric}@EPS.`);
  return { text, metric, eps: m[2] === undefined ? undefined : Number(m[2]), op: m[3] as Assertion['op'], value };
}

function lookup(report: RobustnessReport, a: Assertion): number {
  if (a.metric === 'clean') return report.cleanAccuracy;
  const r = report.results.find((x) => Math.abs(x.eps - a.eps!) < 1e-9);
  if (!r) throw new InvalidArgumentError(`Error in --assert: ${JSON.stringify(a.text)} names eps ${a.eps}, but the report has eps ${report.results.map((x) => x.eps).join(', ')}.`);
  if (a.metric === 'worst') return r.worstCase.robustAccuracy;
  const o = r.attacks.find((x) => x.attack === a.metric);
  if (!o) throw new InvalidArgumentError(`Error in --assert: ${JSON.stringify(a.text)} names attack ${a.metric}, but the report has ${r.attacks.map((x) => x.attack).join(', ')} (and worst, clean).`);
  return o.robustAccuracy ?? o.robustAccuracyAfter;
}

const CMP = { '>=': (a: number, b: number) => a >= b, '>': (a: number, b: number) => a > b, '<=': (a: number, b: number) => a <= b, '<': (a: number, b: number) => a < b };

export function checkAssertions(report: RobustnessReport, assertions: Assertion[]): GateResult[] {
  return assertions.map((a) => {
    const v = lookup(report, a);
    const passed = CMP[a.op](v, a.value);
    return { name: a.text.trim(), passed, message: `${a.metric}${a.eps !== undefined ? `@${a.eps}` : ''} = ${v.toFixed(4)} ${passed ? 'satisfies' : 'fails'} ${a.op} ${a.value}` };
  });
}

/**
 * Refuses, before anything runs, an assertion a run cannot answer: an attack it does not run or
 * an eps it does not evaluate (otherwise found only after the whole evaluation).
 */
export function checkAssertionsFit(assertions: readonly Assertion[], run: { attacks: readonly string[]; epsilons: readonly number[] }): void {
  for (const a of assertions) {
    if (a.metric !== 'clean' && a.metric !== 'worst' && !run.attacks.includes(a.metric)) throw new InvalidArgumentError(`Error in --assert: ${JSON.stringify(a.text)} names attack ${a.metric}, but the run has ${run.attacks.join(', ')} (and worst, clean).`);
    if (a.eps !== undefined && !run.epsilons.some((e) => Math.abs(e - a.eps!) < 1e-9)) throw new InvalidArgumentError(`Error in --assert: ${JSON.stringify(a.text)} names eps ${a.eps}, but the run evaluates eps ${run.epsilons.join(', ')}.`);
  }
}

/**
 * Refuses a baseline that cannot be compared with this run: another threat model (norm), no
 * epsilon in common, or other data (the examples' digest). Its model is expected to differ: it is
 * the previous release. Checked before the run where the data digest is known.
 */
export function checkBaselineFits(baseline: RobustnessReport, run: { norm: string; epsilons: readonly number[]; dataSha256?: string }, file = 'the baseline'): void {
  const bad = (why: string) => new InvalidArgumentError(`Error in --baseline: ${file} ${why}; a baseline is the same evaluation of an earlier model.`);
  if (baseline.config.norm !== run.norm) throw bad(`is an evaluation under ${baseline.config.norm}, this run under ${run.norm}`);
  if (!baseline.results.some((b) => run.epsilons.some((e) => Math.abs(e - b.eps) < 1e-9))) throw bad(`has eps ${baseline.results.map((b) => b.eps).join(', ')}, none of this run's (${run.epsilons.join(', ')})`);
  const theirs = baseline.provenance?.data?.sha256;
  if (run.dataSha256 && theirs && theirs !== run.dataSha256) throw bad(`was computed on other data (${baseline.data.name}, ${baseline.data.examples} examples, SHA-256 ${theirs.slice(0, 12)}…; this run's ${run.dataSha256.slice(0, 12)}…)`);
}

/** Every accuracy in the baseline that the report also has may drop by at most maxDrop. */
export function checkBaseline(report: RobustnessReport, baseline: RobustnessReport, maxDrop: number): GateResult[] {
  const out: GateResult[] = [];
  const cmp = (name: string, now: number, before: number) => {
    const drop = before - now;
    out.push({ name: `baseline ${name}`, passed: drop <= maxDrop + 1e-12, message: `${name}: ${now.toFixed(4)} now, ${before.toFixed(4)} in the baseline (drop ${drop.toFixed(4)}, allowed ${maxDrop})` });
  };
  cmp('clean', report.cleanAccuracy, baseline.cleanAccuracy);
  for (const b of baseline.results) {
    const r = report.results.find((x) => Math.abs(x.eps - b.eps) < 1e-9);
    if (!r) continue;
    cmp(`worst@${b.eps}`, r.worstCase.robustAccuracy, b.worstCase.robustAccuracy);
  }
  if (out.length === 1) out.push({ name: 'baseline epsilons', passed: false, message: `the baseline has eps ${baseline.results.map((x) => x.eps).join(', ')} and this run ${report.results.map((x) => x.eps).join(', ')}: nothing to compare` });
  return out;
}

// XML 1.0 allows no control character but tab, newline and return, even escaped: they are dropped.
// eslint-disable-next-line no-control-regex
const esc = (s: string) => String(s).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udfff]/g, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');

export function junitXml(results: GateResult[], suite = 'advkit robustness'): string {
  const failures = results.filter((r) => !r.passed).length;
  const cases = results.map((r) => `  <testcase classname="advkit.gate" name="${esc(r.name)}">${r.passed ? '' : `\n    <failure message="${esc(r.message)}"/>\n  `}</testcase>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="${esc(suite)}" tests="${results.length}" failures="${failures}">\n${cases.join('\n')}\n</testsuite>\n`;
}
