/** Writes an evaluation's report files (report.json, report.md, report.html, examples.png), atomically. */
import path from 'node:path';
import type { Dataset } from '../data/dataset.js';
import type { Evaluation } from '../eval/evaluate.js';
import { examplesGridPng, renderHtml, renderMarkdown } from '../eval/render.js';
import { writeFileAtomic } from '../util/fs.js';

export async function writeReportFiles(out: string, evaluation: Evaluation, data: Pick<Dataset, 'shape' | 'classNames'>): Promise<string[]> {
  const { report, examples } = evaluation;
  const files: Array<[string, string | Uint8Array]> = [
    ['report.json', `${JSON.stringify(report, null, 2)}\n`],
    ['report.md', renderMarkdown(report)],
  ];
  const grid = examples.length ? await examplesGridPng(examples, data.shape, data.classNames, evaluation.report.config.norm) : undefined;
  if (grid) files.push(['examples.png', grid]);
  files.push(['report.html', await renderHtml(report, { gridPng: grid })]);
  for (const [name, content] of files) await writeFileAtomic(path.join(out, name), content);
  return files.map(([name]) => path.join(out, name));
}
