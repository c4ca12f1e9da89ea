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

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function junitXml(results: GateResult[], suite = 'advkit robustness'): string {
  const failures = results.filter((r) => !r.passed).length;
  const cases = results.map((r) => `  <testcase classname="advkit.gate" name="${esc(r.name)}">${r.passed ? '' : `\n    <failure message="${esc(r.message)}"/>\n  `}</testcase>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="${esc(suite)}" tests="${results.length}" failures="${failures}">\n${cases.join('\n')}\n</testsuite>\n`;
}
