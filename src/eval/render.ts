/**
 * Renderers: a report becomes a terminal table, Markdown, or one self-contained HTML file with
 * a robust-accuracy-vs-eps chart (vega-lite, rendered to SVG) and a PNG grid of examples
 * (original, amplified perturbation, adversarial; made with sharp). The library returns
 * strings and bytes; the CLI decides where they go.
 */
import sharp from 'sharp';
import { escTerm } from '../util/text.js';
import { describePreprocessing } from '../models/classifier.js';
import type { KeptExample } from './evaluate.js';
import { robustAtDistance, type AttackOutcome, type RobustnessReport } from './report.js';
import { NORM_LABELS, type NormName } from '../util/norms.js';

const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);

/**
 * One escaping rule per output format, applied where a renderer writes a string, whatever its
 * origin (advkit's own text, a model's metadata, a folder name, a shard's report).
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;
/** HTML text and attribute values. */
export const escHtml = (s: string) => String(s).replace(CONTROL, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
/** XML text (the SVG grid): as HTML, and no character XML 1.0 forbids. */
export const escXml = (s: string) => escHtml(String(s).replace(/[\ud800-\udfff\ufffe\uffff]/g, '')).replace(/[\t\n\r]/g, ' ');
/** A Markdown table cell or inline text: no line break, pipe, HTML or emphasis it does not mean. */
export const escMd = (s: string) => String(s).replace(CONTROL, '').replace(/[\r\n\t]+/g, ' ').replace(/\\/g, '\\\\').replace(/([|*_`[\]#])/g, '\\$1').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function columnTitle(report: RobustnessReport, k: number): string {
  const names = report.config.attacks.map((a) => a.name.toUpperCase());
  if (!report.config.cascade || k === 0) return names[k]!;
  return `+${names[k]}`;
}

/** One line on the minimum-norm distances, or '' when the run had no minimum-norm attack. */
function minimumNormLine(report: RobustnessReport): string {
  const m = report.minimumNorm;
  if (!m) return '';
  const ball = NORM_LABELS[m.norm];
  const median = m.median === null ? `above every distance found (found for ${m.found} of ${m.distances.length})` : m.median.toPrecision(4);
  const counts = new Map<string, number>();
  for (const a of m.foundBy ?? []) if (a !== null) counts.set(a, (counts.get(a) ?? 0) + 1);
  const by = counts.size > 0 ? ` (closest found by ${[...counts].sort((p, q) => q[1] - p[1]).map(([a, c]) => `${a} ${c}`).join(', ')})` : '';
  return `minimum-norm (${m.attacks.join(', ')}): median ${ball} distance to a wrong class ${median}${by}; robust accuracy is the share of examples farther than eps (curve in the HTML report)`;
}

/** The minimum-norm robust-accuracy curve as (eps, accuracy) steps up to `upTo`. */
export function minimumNormCurve(report: RobustnessReport, upTo: number): Array<{ eps: number; accuracy: number }> {
  const m = report.minimumNorm;
  if (!m) return [];
  const steps = [...new Set(m.distances.filter((d): d is number => d !== null && d <= upTo))].sort((a, b) => a - b);
  return [0, ...steps.filter((d) => d > 0), upTo].map((eps) => ({ eps, accuracy: robustAtDistance(m.distances, eps) }));
}

function cell(report: RobustnessReport, o: AttackOutcome): number | null {
  return report.config.cascade ? o.robustAccuracyAfter : o.robustAccuracy;
}

/** The header and rows of the main table: eps, one column per attack, worst case. */
function tableRows(report: RobustnessReport): { header: string[]; rows: string[][] } {
  const header = ['eps', ...report.config.attacks.map((_, k) => columnTitle(report, k)), 'worst case'];
  const rows = report.results.map((r) => [String(r.eps), ...r.attacks.map((o) => pct(cell(report, o))), pct(r.worstCase.robustAccuracy)]);
  return { header, rows };
}

/** "inputs mapped from [0, 1] to [-1, 1], then (x - mean) / std with mean 0.485,0.456,0.406, std ...", or ''. */
function preprocessingLine(report: RobustnessReport): string {
  const p = report.model.preprocessing;
  return p ? `inputs ${describePreprocessing(report.model.bounds, p)} inside the classifier; epsilons are in pixel units` : '';
}

/** The evaluation note split into its label and its text ("Partial evaluation", "this run used ..."), so no renderer says the label twice. */
function evaluationNote(report: RobustnessReport): { label: string; text: string } | undefined {
  const e = report.evaluation;
  if (!e) return undefined;
  const label = e.complete ? 'Complete evaluation' : 'Partial evaluation';
  const text = e.note.startsWith(`${label}: `) ? e.note.slice(label.length + 2) : e.note;
  return { label, text: text.charAt(0).toUpperCase() + text.slice(1) };
}

export function renderTable(report: RobustnessReport): string {
  const { header, rows } = tableRows(report);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const warn = report.checks.filter((c) => c.status === 'warn');
  const out = [
    `robust accuracy of ${report.model.name}${report.model.defense ? ` behind ${report.model.defense}` : ''} on ${report.data.name} (${report.data.examples} examples, ${NORM_LABELS[report.config.norm]}, clean accuracy ${pct(report.cleanAccuracy)})`,
    report.config.cascade && report.config.attacks.length > 1 ? '(cascade: each column adds its attack on the points still robust)' : '',
    report.model.output && (report.model.output.kind !== 'logits' || report.model.output.head) ? `(logits: ${report.model.output.detail})` : '',
    report.model.preprocessing ? `(preprocessing: ${preprocessingLine(report)})` : '',
    report.evaluation ? `(${report.evaluation.note})` : '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    minimumNormLine(report),
    '',
    warn.length ? `sanity checks: ${warn.length} warning(s)` : report.checks.length ? `sanity checks: all ${report.checks.length} passed` : 'sanity checks: not run',
    ...warn.map((c) => `  ! ${c.id}: ${c.message}\n    ${c.suggestion ?? ''}`),
  ];
  return `${out.filter((l, i) => l !== '' || i > 3).map((l) => l.split('\n').map(escTerm).join('\n')).join('\n')}\n`;
}

/** The perturbation table: successful examples' distances per eps and attack (Markdown and HTML). */
function perturbationTable(report: RobustnessReport): { header: string[]; rows: string[][] } {
  const f = (v: number | null | undefined) => (v === null || v === undefined ? '–' : v.toFixed(4));
  return {
    header: ['eps', 'attack', 'broken / attacked', 'mean L∞', 'max L∞', 'mean L2', 'median L2'],
    rows: report.results.flatMap((r) => r.attacks.filter((o) => o.attacked > 0).map((o) => [String(r.eps), o.attack, `${o.successes} / ${o.attacked}`, f(o.perturbation.linf.mean), f(o.perturbation.linf.max), f(o.perturbation.l2.mean), f(o.perturbation.l2.median)])),
  };
}

/** Worst-case robust accuracy per class at the largest eps. */
function perClassTable(report: RobustnessReport): { title: string; header: string[]; rows: string[][] } {
  const last = report.results[report.results.length - 1];
  return {
    title: `Worst-case robust accuracy per class (eps ${last?.eps})`,
    header: ['class', 'examples', 'robust accuracy'],
    rows: (last?.worstCase.perClass ?? []).map((c) => [c.name, String(c.examples), pct(c.robustAccuracy)]),
  };
}

function mdTable(t: { header: string[]; rows: string[][] }): string[] {
  return [`| ${t.header.map(escMd).join(' | ')} |`, `| ${t.header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...t.rows.map((r) => `| ${r.map(escMd).join(' | ')} |`)];
}

function htmlTable(t: { header: string[]; rows: string[][] }): string {
  return `<table><thead><tr>${t.header.map((h) => `<th>${escHtml(h)}</th>`).join('')}</tr></thead>\n<tbody>${t.rows.map((r) => `<tr>${r.map((c) => `<td>${escHtml(c)}</td>`).join('')}</tr>`).join('\n')}</tbody></table>`;
}

export function renderMarkdown(report: RobustnessReport): string {
  const m = escMd;
  const note = evaluationNote(report);
  const classes = perClassTable(report);
  const md = [
    `# Robustness report: ${m(report.model.name)} on ${m(report.data.name)}`,
    '',
    `**Threat model.** ${m(report.threatModel.description)}`,
    ...(report.model.defense ? ['', `**Defense.** ${m(report.model.defense)}.`] : []),
    ...(report.model.output ? ['', `**Logits.** ${m(report.model.output.detail)}`] : []),
    ...(report.model.preprocessing ? ['', `**Preprocessing.** ${m(preprocessingLine(report))}.`] : []),
    '',
    `Catalogue: ${report.threatModel.catalogue.map((c) => `${m(c.source)} ${m(c.id)} (${m(c.name)})`).join('; ')}.`,
    '',
    `Clean accuracy: **${pct(report.cleanAccuracy)}** on ${report.data.examples} examples. Seed ${m(String(report.config.seed))}, backend ${m(report.createdBy.backend)}, advkit ${m(report.createdBy.advkit)}, tfjs ${m(report.createdBy.tfjs)}, ${report.timing.seconds.toFixed(1)} s.`,
    '',
    ...(note ? [`**${note.label}.** ${m(note.text)}`, ''] : []),
    ...mdTable(tableRows(report)),
    '',
    ...(report.minimumNorm ? [`${m(minimumNormLine(report).replace(' (curve in the HTML report)', ''))}.`, ''] : []),
    report.config.cascade && report.config.attacks.length > 1 ? '_Cascade: each attack runs only on the points still robust; a column is the accuracy after that attack and those before it._\n' : '',
    '## Sanity checks',
    '',
    ...(report.checks.length ? report.checks.map((c) => `- ${c.status === 'warn' ? '⚠️ **warn**' : '✅ pass'} \`${m(c.id).replace(/`/g, '')}\`: ${m(c.message)}${c.suggestion && c.status === 'warn' ? ` _${m(c.suggestion)}_` : ''}`) : ['Not run.']),
    '',
    '## Perturbations of successful examples',
    '',
    ...mdTable(perturbationTable(report)),
    '',
    `## ${m(classes.title)}`,
    '',
    ...mdTable(classes),
    '',
  ];
  return md.join('\n');
}

/** The vega-lite spec of the chart: robust accuracy vs eps, one line per attack and the worst case. */
export function chartSpec(report: RobustnessReport): Record<string, unknown> {
  const values: Array<{ eps: number; accuracy: number; series: string }> = [];
  for (const r of report.results) {
    r.attacks.forEach((o, k) => {
      const v = cell(report, o);
      if (v !== null) values.push({ eps: r.eps, accuracy: v, series: columnTitle(report, k) });
    });
    values.push({ eps: r.eps, accuracy: r.worstCase.robustAccuracy, series: 'worst case' });
  }
  const maxEps = report.results[report.results.length - 1]?.eps ?? 0;
  const curveName = report.minimumNorm ? `minimum norm (${report.minimumNorm.attacks.join(', ')})` : '';
  const curve = minimumNormCurve(report, maxEps > 0 ? maxEps : 1).map((p) => ({ ...p, series: curveName }));
  // The legend in run order, not alphabetical, and never truncated; each series its own dash and
  // point shape, so one that equals another (a cascade step that broke nothing) stays visible.
  const order = [...report.config.attacks.map((_, k) => columnTitle(report, k)), 'worst case', ...(curve.length ? [curveName] : [])];
  const dashes = order.map((o, i) => (o === 'worst case' ? [6, 3] : [[1, 0], [8, 4], [2, 3], [12, 3, 2, 3], [4, 4]][i % 5]!));
  const shapes = order.map((_, i) => ['circle', 'square', 'triangle-up', 'diamond', 'cross', 'triangle-down'][i % 6]!);
  const encoding = {
    x: { field: 'eps', type: 'quantitative', title: 'eps' },
    y: { field: 'accuracy', type: 'quantitative', title: 'robust accuracy', axis: { format: '%' }, scale: { domain: [0, 1] } },
    color: { field: 'series', type: 'nominal', title: null, sort: order, scale: { domain: order }, legend: { labelLimit: 0, orient: 'bottom', columns: 2 } },
  };
  // Color, dash and shape of one field share one legend (vega-lite merges them).
  const byOrder = (range: unknown[]) => ({ field: 'series', type: 'nominal', sort: order, scale: { domain: order, range }, title: null });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 480,
    height: 300,
    title: `Robust accuracy vs eps (${NORM_LABELS[report.config.norm]})`,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: { filled: true, size: 50 }, strokeWidth: 2 },
        encoding: { ...encoding, strokeDash: byOrder(dashes), shape: byOrder(shapes) },
      },
      // The minimum-norm curve is exact between epsilons: a step at each example's distance.
      ...(curve.length ? [{ data: { values: curve }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 }, encoding }] : []),
    ],
  };
}

export async function renderChartSvg(report: RobustnessReport): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  // vega-lite reports spec warnings on the console; the library never prints: they are dropped.
  const quiet = { level: () => quiet, error: () => quiet, warn: () => quiet, info: () => quiet, debug: () => quiet };
  const spec = vl.compile(chartSpec(report) as never, { logger: quiet as never }).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

async function cellPng(pixels: Float32Array, shape: readonly [number, number, number], scale: number): Promise<Buffer> {
  const [h, w, c] = shape;
  const raw = Buffer.alloc(h * w * c);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.max(0, Math.min(255, Math.round(pixels[i]! * 255)));
  return sharp(raw, { raw: { width: w, height: h, channels: c as 1 | 3 } }).resize(w * scale, h * scale, { kernel: 'nearest' }).png().toBuffer();
}

/** A PNG grid: one row per example with the original, the perturbation (amplified) and the adversarial. */
export async function examplesGridPng(examples: KeptExample[], shape: readonly [number, number, number], classNames: readonly string[], norm: NormName = 'linf'): Promise<Buffer> {
  const scale = Math.max(1, Math.floor(112 / Math.max(shape[0], shape[1])));
  const cw = shape[1] * scale;
  const ch = shape[0] * scale;
  const pad = 10;
  const textH = 18;
  const width = 3 * cw + 4 * pad;
  const header = 24;
  const height = header + examples.length * (ch + textH + pad) + pad;
  const parts: string[] = [];
  const label = (i: number) => classNames[i] ?? String(i);
  for (const [row, ex] of examples.entries()) {
    const delta = new Float32Array(ex.x.length);
    let maxAbs = 1e-12;
    for (let i = 0; i < delta.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ex.adversarial[i]! - ex.x[i]!));
    for (let i = 0; i < delta.length; i++) delta[i] = 0.5 + (0.5 * (ex.adversarial[i]! - ex.x[i]!)) / maxAbs;
    const imgs = await Promise.all([cellPng(ex.x, shape, scale), cellPng(delta, shape, scale), cellPng(ex.adversarial, shape, scale)]);
    const y = header + row * (ch + textH + pad);
    imgs.forEach((png, k) => parts.push(`<image x="${pad + k * (cw + pad)}" y="${y}" width="${cw}" height="${ch}" href="data:image/png;base64,${png.toString('base64')}"/>`));
    // Each example's own perturbation size (the threat model's norm) and the attack that found it.
    let size = 0;
    for (let i = 0; i < delta.length; i++) { const d = Math.abs(ex.adversarial[i]! - ex.x[i]!); size = norm === 'linf' ? Math.max(size, d) : norm === 'l2' ? size + d * d : size + d; }
    if (norm === 'l2') size = Math.sqrt(size);
    const texts = [`true: ${label(ex.label)}`, `${ex.attack}: ${NORM_LABELS[norm]} ${size.toFixed(3)} (eps ${ex.eps})`, `pred: ${label(ex.prediction)}`];
    texts.forEach((t, k) => parts.push(`<text x="${pad + k * (cw + pad)}" y="${y + ch + 14}" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#222">${escXml(t.length > 40 ? `${t.slice(0, 39)}…` : t)}</text>`));
  }
  const titles = ['original', 'perturbation', 'adversarial'];
  titles.forEach((t, k) => parts.push(`<text x="${pad + k * (cw + pad)}" y="16" font-family="DejaVu Sans, sans-serif" font-size="12" font-weight="bold" fill="#222">${t}</text>`));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}


/** One self-contained HTML file: summary, chart (inline SVG), table, checks, example grid. */
export async function renderHtml(report: RobustnessReport, options: { gridPng?: Buffer } = {}): Promise<string> {
  const svg = await renderChartSvg(report);
  const checks = report.checks.map((c) => `<li class="${c.status}"><b>${c.status === 'warn' ? 'warn' : 'pass'}</b> <code>${escHtml(c.id)}</code>: ${escHtml(c.message)}${c.status === 'warn' && c.suggestion ? `<br><i>${escHtml(c.suggestion)}</i>` : ''}</li>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>advkit robustness report: ${escHtml(report.model.name)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222;line-height:1.45}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
li.warn,p.warn{color:#9a3412}li.pass,p.pass{color:#166534}.chart svg{max-width:100%;height:auto}code{background:#f3f4f6;padding:0 3px}
</style></head><body>
<h1>Robustness report: ${escHtml(report.model.name)} on ${escHtml(report.data.name)}</h1>
<p><b>Threat model.</b> ${escHtml(report.threatModel.description)}<br>
Catalogue: ${report.threatModel.catalogue.map((c) => `${escHtml(c.source)} <code>${escHtml(c.id)}</code> (${escHtml(c.name)})`).join('; ')}.</p>
${report.model.defense ? `<p><b>Defense.</b> ${escHtml(report.model.defense)}.</p>` : ''}
${report.model.output ? `<p><b>Logits.</b> ${escHtml(report.model.output.detail)}</p>` : ''}
${report.model.preprocessing ? `<p><b>Preprocessing.</b> ${escHtml(preprocessingLine(report))}.</p>` : ''}
<p>Clean accuracy <b>${pct(report.cleanAccuracy)}</b> on ${Number(report.data.examples)} examples · seed ${escHtml(String(report.config.seed))} · backend ${escHtml(report.createdBy.backend)} · advkit ${escHtml(report.createdBy.advkit)} · ${report.timing.seconds.toFixed(1)} s</p>
${report.evaluation ? `<p class="${report.evaluation.complete ? 'pass' : 'warn'}"><b>${evaluationNote(report)!.label}.</b> ${escHtml(evaluationNote(report)!.text)}</p>` : ''}
<div class="chart" id="chart">${svg}</div>
${report.minimumNorm ? `<p>${escHtml(minimumNormLine(report).replace(' (curve in the HTML report)', ' (the step curve above)'))}.</p>` : ''}
${htmlTable(tableRows(report))}
<h2>Sanity checks</h2><ul>${checks || '<li>Not run.</li>'}</ul>
<h2>Perturbations of successful examples</h2>
${htmlTable(perturbationTable(report))}
<h2>${escHtml(perClassTable(report).title)}</h2>
${htmlTable(perClassTable(report))}
${options.gridPng ? `<h2>Examples</h2><img alt="original, amplified perturbation and adversarial examples" src="data:image/png;base64,${options.gridPng.toString('base64')}">` : ''}
<script type="application/json" id="report">${JSON.stringify(report).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
