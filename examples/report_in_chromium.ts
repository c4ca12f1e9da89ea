/**
 * Opens an advkit HTML report in headless Chromium, takes a screenshot and checks that the
 * chart is there: the rendered DOM holds the vega SVG with its lines, and the screenshot's
 * chart area is not blank. CI runs it on the demo's report.
 *
 *   node dist/examples/report_in_chromium.js REPORT.html SCREENSHOT.png
 *
 * Needs Debian's chromium (`apt-get install chromium`); CHROMIUM overrides the binary.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';

const [html, shot] = process.argv.slice(2);
if (!html || !shot) {
  process.stderr.write('usage: report_in_chromium REPORT.html SCREENSHOT.png\n');
  process.exit(2);
}
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(path.join(os.tmpdir(), 'advkit-chromium-'))}`];
const url = pathToFileURL(path.resolve(html)).href;
const dom = execFileSync(chromium, [...flags, '--dump-dom', url], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
execFileSync(chromium, [...flags, '--window-size=1000,900', '--hide-scrollbars', `--screenshot=${path.resolve(shot)}`, url], { stdio: 'ignore' });

const problems: string[] = [];
if (!/<svg[^>]*class="marks"/.test(dom)) problems.push('the rendered page has no vega chart SVG');
const lines = (dom.match(/<path[^>]*aria-roledescription="line mark"/g) ?? []).length + (dom.match(/role-line/g) ?? []).length;
if (lines === 0) problems.push('the chart has no line marks');
// The chart sits below the title and summary; its region must not be blank.
const meta = await sharp(shot).metadata();
const region = await sharp(shot).extract({ left: 0, top: 150, width: Math.min(meta.width ?? 1000, 700), height: 350 }).stats();
const ink = region.channels.slice(0, 3).reduce((a, c) => a + c.stdev, 0);
if (ink < 5) problems.push(`the screenshot's chart area is blank (stdev ${ink.toFixed(2)})`);
if (problems.length) {
  process.stderr.write(`report_in_chromium: ${problems.join('; ')}\n`);
  process.exit(1);
}
process.stdout.write(`report_in_chromium: chart rendered (${lines} line marks); screenshot ${path.resolve(shot)}\n`);
