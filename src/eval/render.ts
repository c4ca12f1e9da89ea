/**
 * Renderers: a report becomes a terminal table, Markdown, or one self-contained HTML file with
 * a robust-accuracy-vs-eps chart (vega-lite, rendered to SVG) and a PNG grid of examples
 * (original, amplified perturbation, adversarial; made with sharp). The library returns
 * strings and bytes; the CLI decides where they go.
 */
import sharp from 'sharp';
import type { KeptExample } from './evaluate.js';
import { robustAtDistance, type AttackOutcome, type RobustnessReport } from './report.js';

const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)}%`);

function columnTitle(report: RobustnessReport, k: number): string {
  const names = report.config.attacks.map((a) => a.name.toUpperCase());
  if (!report.config.cascade || k === 0) return names[k]!;
  return `+${names[k]}`;
}

/** One line on the minimum-norm distances, or '' when the run had no minimum-norm attack. */
function minimumNormLine(report: RobustnessReport): string {
  const m = report.minimumNorm;
  if (!m) return '';
  const ball = m.norm === 'linf' ? 'L∞' : 'L2';
  const median = m.median === null ? `above every distance found (found for ${m.found} of ${m.distances.length})` : m.median.toPrecision(4);
  return `minimum-norm (${m.attacks.join(', ')}): median ${ball} distance to a wrong class ${median}; robust accuracy is the share of examples farther than eps (curve in the HTML report)`;
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
  if (!p) return '';
  const parts = [
    p.inputRange ? `pixels in [${report.model.bounds.join(', ')}] mapped onto [${p.inputRange.join(', ')}]` : '',
    p.normalization ? `normalized as (x - mean) / std with mean ${p.normalization.mean.join(',')} and std ${p.normalization.std.join(',')}` : '',
  ].filter(Boolean);
  return `inputs ${parts.join(', then ')} inside the classifier; epsilons are in pixel units`;
}

export function renderTable(report: RobustnessReport): string {
  const { header, rows } = tableRows(report);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const warn = report.checks.filter((c) => c.status === 'warn');
  const out = [
    `robust accuracy of ${report.model.name}${report.model.defense ? ` behind ${report.model.defense}` : ''} on ${report.data.name} (${report.data.examples} examples, ${report.config.norm === 'linf' ? 'L∞' : 'L2'}, clean accuracy ${pct(report.cleanAccuracy)})`,
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
  return `${out.filter((l, i) => l !== '' || i > 3).join('\n')}\n`;
}

export function renderMarkdown(report: RobustnessReport): string {
  const { header, rows } = tableRows(report);
  const md = [
    `# Robustness report: ${report.model.name} on ${report.data.name}`,
    '',
    `**Threat model.** ${report.threatModel.description}`,
    ...(report.model.defense ? ['', `**Defense.** ${report.model.defense}.`] : []),
    ...(report.model.output ? ['', `**Logits.** ${report.model.output.detail}`] : []),
    ...(report.model.preprocessing ? ['', `**Preprocessing.** ${preprocessingLine(report)}.`] : []),
    '',
    `Catalogue: ${report.threatModel.catalogue.map((c) => `${c.source} ${c.id} (${c.name})`).join('; ')}.`,
    '',
    `Clean accuracy: **${pct(report.cleanAccuracy)}** on ${report.data.examples} examples. Seed ${report.config.seed}, backend ${report.createdBy.backend}, advkit ${report.createdBy.advkit}, tfjs ${report.createdBy.tfjs}, ${report.timing.seconds.toFixed(1)} s.`,
    '',
    ...(report.evaluation ? [`**${report.evaluation.complete ? 'Complete' : 'Partial'} evaluation.** ${report.evaluation.note}`, ''] : []),
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    ...(report.minimumNorm ? [`${minimumNormLine(report).replace(' (curve in the HTML report)', '')}.`, ''] : []),
    report.config.cascade && report.config.attacks.length > 1 ? '_Cascade: each attack runs only on the points still robust; a column is the accuracy after that attack and those before it._\n' : '',
    '## Sanity checks',
    '',
    ...(report.checks.length ? report.checks.map((c) => `- ${c.status === 'warn' ? '⚠️ **warn**' : '✅ pass'} \`${c.id}\`: ${c.message}${c.suggestion && c.status === 'warn' ? ` _${c.suggestion}_` : ''}`) : ['Not run.']),
    '',
    '## Perturbations of successful examples',
    '',
    '| eps | attack | broken / attacked | mean L∞ | max L∞ | mean L2 | median L2 |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...report.results.flatMap((r) => r.attacks.filter((o) => o.attacked > 0).map((o) => `| ${r.eps} | ${o.attack} | ${o.successes} / ${o.attacked} | ${o.perturbation.linf.mean?.toFixed(4) ?? '–'} | ${o.perturbation.linf.max?.toFixed(4) ?? '–'} | ${o.perturbation.l2.mean?.toFixed(4) ?? '–'} | ${o.perturbation.l2.median?.toFixed(4) ?? '–'} |`)),
    '',
    `## Worst-case robust accuracy per class (eps ${report.results[report.results.length - 1]?.eps})`,
    '',
    '| class | examples | robust accuracy |',
    '| --- | ---: | ---: |',
    ...(report.results[report.results.length - 1]?.worstCase.perClass ?? []).map((c) => `| ${c.name} | ${c.examples} | ${pct(c.robustAccuracy)} |`),
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
  const curve = minimumNormCurve(report, maxEps > 0 ? maxEps : 1).map((p) => ({ ...p, series: `minimum norm (${report.minimumNorm!.attacks.join(', ')})` }));
  const encoding = {
    x: { field: 'eps', type: 'quantitative', title: 'eps' },
    y: { field: 'accuracy', type: 'quantitative', title: 'robust accuracy', axis: { format: '%' }, scale: { domain: [0, 1] } },
    color: { field: 'series', type: 'nominal', title: null },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 480,
    height: 300,
    title: `Robust accuracy vs eps (${report.config.norm === 'linf' ? 'L∞' : 'L2'})`,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: { ...encoding, strokeDash: { condition: { test: "datum.series === 'worst case'", value: [6, 3] }, value: [1, 0] } },
      },
      ...(curve.length ? [{ data: { values: curve }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 }, encoding }] : []),
    ],
  };
}

export async function renderChartSvg(report: RobustnessReport): Promise<string> {
  const vl = await import('vega-lite');
  const vega = await import('vega');
  const spec = vl.compile(chartSpec(report) as never).spec;
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
export async function examplesGridPng(examples: KeptExample[], shape: readonly [number, number, number], classNames: readonly string[]): Promise<Buffer> {
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
    const texts = [`true: ${label(ex.label)}`, `${ex.attack} eps ${ex.eps}`, `pred: ${label(ex.prediction)}`];
    texts.forEach((t, k) => parts.push(`<text x="${pad + k * (cw + pad)}" y="${y + ch + 14}" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#222">${t.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`));
  }
  const titles = ['original', 'perturbation', 'adversarial'];
  titles.forEach((t, k) => parts.push(`<text x="${pad + k * (cw + pad)}" y="16" font-family="DejaVu Sans, sans-serif" font-size="12" font-weight="bold" fill="#222">${t}</text>`));
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const escHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One self-contained HTML file: summary, chart (inline SVG), table, checks, example grid. */
export async function renderHtml(report: RobustnessReport, options: { gridPng?: Buffer } = {}): Promise<string> {
  const svg = await renderChartSvg(report);
  const { header, rows } = tableRows(report);
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
Catalogue: ${report.threatModel.catalogue.map((c) => `${escHtml(c.source)} <code>${c.id}</code> (${escHtml(c.name)})`).join('; ')}.</p>
${report.model.defense ? `<p><b>Defense.</b> ${escHtml(report.model.defense)}.</p>` : ''}
${report.model.output ? `<p><b>Logits.</b> ${escHtml(report.model.output.detail)}</p>` : ''}
${report.model.preprocessing ? `<p><b>Preprocessing.</b> ${escHtml(preprocessingLine(report))}.</p>` : ''}
<p>Clean accuracy <b>${pct(report.cleanAccuracy)}</b> on ${report.data.examples} examples · seed ${report.config.seed} · backend ${escHtml(report.createdBy.backend)} · advkit ${escHtml(report.createdBy.advkit)} · ${report.timing.seconds.toFixed(1)} s</p>
${report.evaluation ? `<p class="${report.evaluation.complete ? 'pass' : 'warn'}"><b>${report.evaluation.complete ? 'Complete' : 'Partial'} evaluation.</b> ${escHtml(report.evaluation.note)}</p>` : ''}
<div class="chart" id="chart">${svg}</div>
${report.minimumNorm ? `<p>${escHtml(minimumNormLine(report).replace(' (curve in the HTML report)', ' (the step curve above)'))}.</p>` : ''}
<table><thead><tr>${header.map((h) => `<th>${escHtml(h)}</th>`).join('')}</tr></thead>
<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escHtml(c)}</td>`).join('')}</tr>`).join('\n')}</tbody></table>
<h2>Sanity checks</h2><ul>${checks || '<li>Not run.</li>'}</ul>
${options.gridPng ? `<h2>Examples</h2><img alt="original, amplified perturbation and adversarial examples" src="data:image/png;base64,${options.gridPng.toString('base64')}">` : ''}
<script type="application/json" id="report">${JSON.stringify(report).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
