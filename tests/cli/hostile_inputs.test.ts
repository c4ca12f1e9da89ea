/**
 * Security and reliability, round two: crafted and careless inputs, tried as an attacker would,
 * one class at a time. Each must be refused with one line and exit 2 (or handled), and must not
 * write outside --out, run script in a report, replace what is not a regular file, hang, blow up
 * memory, or be reported as a result.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { writeNpy } from '../../src/data/npy.js';
import { makeDataset } from '../../src/data/dataset.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { junitXml } from '../../src/eval/gate.js';
import { examplesGridPng, renderHtml, renderMarkdown, renderTable } from '../../src/eval/render.js';
import { fromLayersModel } from '../../src/models/classifier.js';
import { saveLayersModel } from '../../src/models/io.js';
import { uniform, useBackend } from '../helpers.js';
import { advkit, CLI, expectUsageError, tempDirWithModel } from './run.js';

let dir: string;
let model: string;
let data: string;
const inDir = (...p: string[]) => path.join(dir, ...p);

beforeAll(async () => {
  ({ dir, model } = await tempDirWithModel('advkit-hostile-', 'mlp', 2));
  await writeNpy(inDir('x.npy'), uniform(8 * 28 * 28, 4, 0, 1), [8, 28, 28, 1]);
  await writeNpy(inDir('y.npy'), Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), [8]);
  data = `npy:${inDir('x.npy')},${inDir('y.npy')}`;
});

/** A functional LayersModel's model.json with the inbound node of layer `dense` replaced. */
async function functionalWith(name: string, inbound: unknown): Promise<string> {
  const input = tf.input({ shape: [4, 4, 1], name: 'in' });
  const flat = tf.layers.flatten({ name: 'flat' }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'dense' }).apply(flat) as tf.SymbolicTensor;
  const net = tf.model({ inputs: input, outputs: out });
  const m = inDir(name);
  await saveLayersModel(net, m, { advkitVersion: 'test' });
  net.dispose();
  const json = JSON.parse(await fsp.readFile(path.join(m, 'model.json'), 'utf8'));
  const layer = json.modelTopology.config.layers.find((l: { name: string }) => l.name === 'dense');
  layer.inbound_nodes = inbound;
  await fsp.writeFile(path.join(m, 'model.json'), JSON.stringify(json));
  return m;
}

describe('1. untrusted fields used as paths', () => {
  it('merge refuses a shard manifest whose "file" leads outside --out, and writes nothing there', async () => {
    const shards = [0, 1].map((i) => inDir(`shard${i}`));
    for (const [i, s] of shards.entries()) {
      const r = advkit(['attack', '--model', model, '--data', data, '--eps', '0.1', '--steps', '1', '--shard', `${i}/2`, '--out', s]);
      expect(r.code, r.stderr).toBe(0);
    }
    const victim = inDir('victim.txt');
    await fsp.writeFile(victim, 'keep');
    const manifest = path.join(shards[0]!, 'manifest.jsonl');
    const lines = (await fsp.readFile(manifest, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    lines[0].file = path.relative(inDir('merged'), victim);
    await fsp.writeFile(manifest, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    expectUsageError(['merge', ...shards, '--out', inDir('merged')], /line 1 of .*manifest.jsonl: "file" is ".*victim.txt" but must be "png\/00000.png"/);
    expect(await fsp.readFile(victim, 'utf8')).toBe('keep');
  });

  it('defend refuses an example set whose "index" is a path, or whose labels are not class indices', async () => {
    const set = inDir('set');
    expect(advkit(['attack', '--model', model, '--data', data, '--eps', '0.1', '--steps', '1', '--out', set, '--format', 'png,npy']).code).toBe(0);
    const manifest = path.join(set, 'manifest.jsonl');
    const original = await fsp.readFile(manifest, 'utf8');
    const edit = async (k: number, field: string, value: unknown) => {
      const lines = original.trim().split('\n').map((l) => JSON.parse(l));
      lines[k][field] = value;
      await fsp.writeFile(manifest, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    };
    await edit(0, 'index', '../../x/pwn');
    expectUsageError(['defend', '--input', set, '--defense', 'median:3', '--out', inDir('d1')], /"index" is "..\/..\/x\/pwn" but must be an integer >= 0/);
    for (const bad of ['abc', 1.5, 4294967298, null, [7]]) {
      await edit(1, 'label', bad);
      expectUsageError(['defend', '--input', set, '--defense', 'median:3', '--out', inDir(`d-${String(bad)}`)], /line 2 of .*: "label" is .* but must be a class index/);
    }
    await expect(fsp.stat(path.resolve(dir, '..', 'x'))).rejects.toThrow();
  });
});

describe('2. no script in reports', () => {
  it('class names with script, pipes, newlines, ]]> and control characters are escaped by every renderer, and the grid renders', async () => {
    await useBackend('wasm');
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
    const names = ['<script>alert(1)</script>', 'a|b\n| x |', ']]>\u0001\u001b[31m'];
    const ds = makeDataset('evil', uniform(6 * 16, 3, 0, 1), Int32Array.from([0, 1, 2, 0, 1, 2]), [4, 4, 1], names);
    const ev = await evaluateRobustness(fromLayersModel(net), ds, { attacks: [{ name: 'fgsm' }], epsilons: [0.5], checks: false, keepExamples: 3 });
    const md = renderMarkdown(ev.report);
    expect(md).not.toContain('<script>');
    // The per-class table: a header and one row per class, each with exactly three cells.
    const rows = md.split('\n');
    const at = rows.findIndex((l) => l.startsWith('| class |'));
    for (const line of rows.slice(at, at + 2 + names.length)) expect(line.split(/(?<!\\)\|/).length, line).toBe(5);
    expect(md).toContain('a\\|b \\| x \\|');
    const html = await renderHtml(ev.report, { gridPng: await examplesGridPng(ev.examples, ds.shape, names) });
    expect(html).not.toMatch(/<script>alert/);
    expect(html).not.toContain('\u001b');
    expect(renderTable(ev.report)).not.toContain('\u001b');
    net.dispose();
  });

  it('a merge copies no shard string into the HTML unescaped', async () => {
    const shards = [0, 1].map((i) => inDir(`eshard${i}`));
    for (const [i, s] of shards.entries()) {
      const r = advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--shard', `${i}/2`, '--out', s, '--no-checks']);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const s of shards) {
      const file = path.join(s, 'report.json');
      const report = JSON.parse(await fsp.readFile(file, 'utf8'));
      report.threatModel.catalogue[0].id = '<img src=x onerror=alert(1)>';
      report.model.name = '<svg onload=alert(2)>';
      await fsp.writeFile(file, JSON.stringify(report));
    }
    const r = advkit(['merge', ...shards, '--out', inDir('emerged'), '--no-checks']);
    expect(r.code, r.stderr).toBe(0);
    const html = await fsp.readFile(inDir('emerged', 'report.html'), 'utf8');
    expect(html).not.toMatch(/<img src=x/);
    expect(html).not.toMatch(/<svg onload/);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('rendering the chart prints nothing (vega-lite\'s warnings are dropped: the library never prints)', async () => {
    const { renderChartSvg } = await import('../../src/eval/render.js');
    await useBackend('wasm');
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
    const ds = makeDataset('quiet', uniform(6 * 16, 5, 0, 1), Int32Array.from([0, 1, 2, 0, 1, 2]), [4, 4, 1], ['a', 'b', 'c']);
    const { report } = await evaluateRobustness(fromLayersModel(net), ds, { attacks: [{ name: 'fgsm' }, { name: 'pgd', options: { steps: 2 } }, { name: 'fab-t', options: { steps: 2 } }], epsilons: [0, 0.2], checks: false });
    net.dispose();
    const writes: unknown[] = [];
    const { warn, log, error } = console;
    console.warn = console.log = console.error = (...a: unknown[]) => { writes.push(a); };
    try {
      expect((await renderChartSvg(report)).length).toBeGreaterThan(1000);
    } finally {
      Object.assign(console, { warn, log, error });
    }
    expect(writes).toEqual([]);
  });

  it('JUnit XML carries no control character XML forbids', () => {
    const xml = junitXml([{ name: 'baseline worst@0.1\u000b', passed: false, message: 'eps 0.1\u000b\u0000 dropped' }]);
    // eslint-disable-next-line no-control-regex
    expect(xml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    expect(xml).toContain('eps 0.1 dropped');
  });
});

describe('3. never writing over what is not a regular file', () => {
  it('--junit refuses a FIFO, a character device, a symlink and a directory, before computing, leaving each as it was', async () => {
    const targets = inDir('targets');
    await fsp.mkdir(targets, { recursive: true });
    const fifo = path.join(targets, 'fifo.xml');
    const dev = path.join(targets, 'null.xml');
    const link = path.join(targets, 'link.xml');
    spawnSync('mkfifo', [fifo]);
    spawnSync('mknod', [dev, 'c', '1', '3']);
    await fsp.writeFile(path.join(targets, 'real.xml'), 'mine');
    await fsp.symlink(path.join(targets, 'real.xml'), link);
    const kinds: Array<[string, RegExp]> = [[fifo, /a FIFO/], [dev, /a device/], [link, /a symbolic link/], [targets, /a directory/]];
    for (const [t, kind] of kinds) {
      const r = advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--no-checks', '--junit', t]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(kind);
      expect(r.stderr).not.toMatch(/evaluated/);
    }
    expect((await fsp.lstat(fifo)).isFIFO()).toBe(true);
    expect((await fsp.lstat(dev)).isCharacterDevice()).toBe(true);
    expect((await fsp.lstat(link)).isSymbolicLink()).toBe(true);
    expect(await fsp.readFile(path.join(targets, 'real.xml'), 'utf8')).toBe('mine');
    expectUsageError(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--junit', '/proc/advkit/junit.xml'], /Error in --junit: cannot write \/proc\/advkit\/junit.xml/);
  });
});

describe('4. eval --out never replaces a foreign directory', () => {
  it('a directory holding the user\'s report.md and .state/keep.txt is refused; both files stay', async () => {
    const out = inDir('users');
    await fsp.mkdir(path.join(out, '.state'), { recursive: true });
    await fsp.writeFile(path.join(out, 'report.md'), 'my notes');
    await fsp.writeFile(path.join(out, '.state', 'keep.txt'), 'mine');
    expectUsageError(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--out', out], /Error in --out: .* holds files advkit did not write/);
    expect(await fsp.readFile(path.join(out, 'report.md'), 'utf8')).toBe('my notes');
    expect(await fsp.readFile(path.join(out, '.state', 'keep.txt'), 'utf8')).toBe('mine');
    // advkit's own report directory is replaced as before.
    const own = inDir('own');
    expect(advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--out', own, '--no-checks']).code).toBe(0);
    expect(advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.2', '--out', own, '--no-checks']).code).toBe(0);
  });
});

describe('5. no hangs', () => {
  const quick = { timeout: 60_000 };
  it('functional model.json topologies that name themselves, form a 2-cycle or name a missing layer are refused at once', quick, async () => {
    const self = await functionalWith('self', [[['dense', 0, 0, {}]]]);
    expectUsageError(['inspect', '--model', self], /layer 'dense' reads its own output through a cycle/);
    const missing = await functionalWith('dangling', [[['nowhere', 0, 0, {}]]]);
    expectUsageError(['inspect', '--model', missing], /layer 'dense' reads from 'nowhere', which is not a layer of the model/);
    const two = await functionalWith('two-cycle', [[['flat', 0, 0, {}]]]);
    const json = JSON.parse(await fsp.readFile(path.join(two, 'model.json'), 'utf8'));
    json.modelTopology.config.layers.find((l: { name: string }) => l.name === 'flat').inbound_nodes = [[['dense', 0, 0, {}]]];
    await fsp.writeFile(path.join(two, 'model.json'), JSON.stringify(json));
    expectUsageError(['attack', '--model', two, '--data', data, '--eps', '0.1', '--out', inDir('never')], /reads its own output through a cycle \((flat -> dense -> flat|dense -> flat -> dense)\)/);
  });

  it('a FIFO named f.png in an image folder is refused, not read', quick, async () => {
    await fsp.mkdir(inDir('fifo-folder', 'a'), { recursive: true });
    await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png().toFile(inDir('fifo-folder', 'a', 'ok.png'));
    spawnSync('mkfifo', [inDir('fifo-folder', 'a', 'f.png')]);
    expectUsageError(['eval', '--model', model, '--data', `folder:${inDir('fifo-folder')}`, '--attacks', 'fgsm', '--eps', '0.1'], /f.png: not a regular file \(a FIFO\)/);
  });
});

describe('6. bounded memory', () => {
  it('pixel bombs and an SVG named .png are refused from their headers; a topology sizing 400,000 units beside small weights is refused before allocation', async () => {
    await fsp.mkdir(inDir('bombs', 'a'), { recursive: true });
    await sharp({ create: { width: 16000, height: 16000, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png({ compressionLevel: 9 }).toFile(inDir('bombs', 'a', 'big.png'));
    const r = advkit(['eval', '--model', model, '--data', `folder:${inDir('bombs')}`, '--attacks', 'fgsm', '--eps', '0.1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/big.png is 16000x16000 pixels, more than the 64000000 allowed per image/);
    // Refused from the header: the reading process never holds the 256 MB of pixels.
    const probe = `import { loadDataset } from ${JSON.stringify(path.resolve(CLI, '../index.js'))}; await loadDataset(${JSON.stringify(`folder:${inDir('bombs')}`)}).catch(() => {}); console.log(process.resourceUsage().maxRSS);`;
    const rss = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
    expect(rss.status, rss.stderr).toBe(0);
    expect(Number(rss.stdout.trim()) / 1024).toBeLessThan(400);
    await fsp.mkdir(inDir('svg', 'a'), { recursive: true });
    await fsp.writeFile(inDir('svg', 'a', 'x.png'), '<svg xmlns="http://www.w3.org/2000/svg" width="15000" height="15000"></svg>');
    expectUsageError(['eval', '--model', model, '--data', `folder:${inDir('svg')}`, '--attacks', 'fgsm', '--eps', '0.1'], /x.png is svg, not a PNG, JPEG, WebP, GIF or TIFF image/);
    const huge = await functionalWith('huge', [[['flat', 0, 0, {}]]]);
    const json = JSON.parse(await fsp.readFile(path.join(huge, 'model.json'), 'utf8'));
    json.modelTopology.config.layers.find((l: { name: string }) => l.name === 'dense').config.units = 400000;
    await fsp.writeFile(path.join(huge, 'model.json'), JSON.stringify(json));
    expectUsageError(['inspect', '--model', huge], /layer 'dense' has units 400000 but its weight .*kernel has shape \[16, 2\]/);
  });
});

describe('7. garbage is refused, not reported', () => {
  async function quantized(name: string, quantization: object, raw: Uint8Array): Promise<string> {
    const m = inDir(name);
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 2, name: 'd' })] });
    await saveLayersModel(net, m, { advkitVersion: 'test' });
    net.dispose();
    const json = JSON.parse(await fsp.readFile(path.join(m, 'model.json'), 'utf8'));
    const specs = json.weightsManifest[0].weights;
    const bias = specs.find((w: { name: string }) => w.name.endsWith('bias'));
    bias.quantization = quantization;
    const kernelBytes = 784 * 2 * 4;
    const old = await fsp.readFile(path.join(m, 'weights.bin'));
    await fsp.writeFile(path.join(m, 'weights.bin'), Buffer.concat([old.subarray(0, kernelBytes), Buffer.from(raw)]));
    await fsp.writeFile(path.join(m, 'model.json'), JSON.stringify(json));
    return m;
  }

  it('a float16-quantized NaN and a quantization scale of 1e999 are refused at load', async () => {
    const nan = await quantized('f16-nan', { dtype: 'float16' }, new Uint8Array(new Uint16Array([0x3c00, 0x7e00]).buffer));
    expectUsageError(['inspect', '--model', nan], /weight .*bias holds NaN \(float16 bits 0x7e00\) at flat index 1/);
    const scale = await quantized('u8-scale', { dtype: 'uint8', scale: 1e999, min: 0 }, new Uint8Array([1, 2]));
    const json = (await fsp.readFile(path.join(scale, 'model.json'), 'utf8')).replace('"scale":null', '"scale":1e999');
    await fsp.writeFile(path.join(scale, 'model.json'), json);
    expectUsageError(['inspect', '--model', scale], /weight .*bias has quantization scale .* which is not a finite number|dequantizes beyond float32/);
  });

  it('an empty data set, bounds other than the data\'s [0, 1], and incomparable or malformed baselines are refused before the run', async () => {
    await writeNpy(inDir('x0.npy'), new Float32Array(0), [0, 28, 28, 1]);
    await writeNpy(inDir('y0.npy'), new Int32Array(0), [0]);
    expectUsageError(['eval', '--model', model, '--data', `npy:${inDir('x0.npy')},${inDir('y0.npy')}`, '--attacks', 'fgsm', '--eps', '0.1'], /holds no examples/);
    const wide = inDir('wide');
    await fsp.cp(model, wide, { recursive: true });
    await fsp.writeFile(path.join(wide, 'advkit.json'), JSON.stringify({ advkitVersion: 'test', bounds: [0, 255] }));
    expectUsageError(['attack', '--model', wide, '--data', data, '--eps', '0.1', '--out', inDir('wide-out')], /the model's bounds \[0, 255\] are not the data's pixel range \[0, 1\].*--input-range 0,255/);
    const base = inDir('base');
    expect(advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.5', '--norm', 'l2', '--no-checks', '--out', base]).code).toBe(0);
    expectUsageError(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.5', '--no-checks', '--baseline', path.join(base, 'report.json')], /Error in --baseline: .* is an evaluation under l2, this run under linf/);
    expectUsageError(['eval', '--model', model, '--data', 'mnist', '--limit', '8', '--attacks', 'fgsm', '--eps', '0.5', '--norm', 'l2', '--no-checks', '--baseline', path.join(base, 'report.json')], /Error in --baseline: .* was computed on other data/);
    await fsp.writeFile(inDir('bad-base.json'), JSON.stringify({ schema: 'advkit.robustness-report', results: 'none' }));
    expectUsageError(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.5', '--baseline', inDir('bad-base.json')], /Error in --baseline: .* is malformed/);
  });
});

describe('8. early, named failures', () => {
  it('a gate naming an attack or eps the run does not have is refused before the evaluation', () => {
    const a = advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--assert', 'pgd@0.1>=0.5']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/names attack pgd, but the run has fgsm/);
    expect(a.stderr).not.toMatch(/evaluated/);
    expectUsageError(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--assert', 'fgsm@0.3>=0.5'], /names eps 0.3, but the run evaluates eps 0.1/);
  });

  it('a full disk is one line naming the file, exit 1, not an internal error (a 48 KiB tmpfs, mounted as root)', async () => {
    const small = inDir('tiny-fs');
    await fsp.mkdir(small, { recursive: true });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'tmpfs', small], { encoding: 'utf8' });
    expect(m.status, `this test mounts a tmpfs and needs root: ${m.stderr}`).toBe(0);
    try {
      const r = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '16', '--attacks', 'fgsm', '--eps', '0,0.1', '--no-checks', '--out', path.join(small, 'rep')]);
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('advkit:') && !l.startsWith('advkit: note:'));
      expect(lines.at(-1)).toMatch(/^advkit: Error writing .*tiny-fs\/rep\/.*: the disk is full \(ENOSPC\); nothing was replaced\.$/);
      expect(r.stderr).not.toMatch(/internal error|WARN/);
    } finally {
      spawnSync('umount', [small]);
    }
  });

  it('a fractional weight shape is a named error, not an internal one', async () => {
    const m = inDir('frac-shape');
    await fsp.cp(model, m, { recursive: true });
    const json = JSON.parse(await fsp.readFile(path.join(m, 'model.json'), 'utf8'));
    json.weightsManifest[0].weights[0].shape = [1.5, 2];
    await fsp.writeFile(path.join(m, 'model.json'), JSON.stringify(json));
    expectUsageError(['inspect', '--model', m], /weight ".*" has shape \[1.5,2\], not a list of whole numbers/);
  });

  it('defend refuses inputs whose outputs would collide; a folder name\'s escape sequences never reach the terminal', async () => {
    const f = inDir('collide', 'a');
    await fsp.mkdir(f, { recursive: true });
    for (const ext of ['png', 'jpg', 'webp']) await sharp({ create: { width: 28, height: 28, channels: 3, background: { r: 0, g: 0, b: 0 } } }).toFormat(ext as 'png').toFile(path.join(f, `a.${ext}`));
    expectUsageError(['defend', '--input', inDir('collide'), '--defense', 'median:3', '--out', inDir('collide-out')], /would both be written as a\/a.png; rename one of them/);
    const evil = inDir('ansi', '\u001b[31mred\u001b]0;title\u0007');
    await fsp.mkdir(evil, { recursive: true });
    await fsp.writeFile(path.join(evil, 'notes.txt'), 'x');
    const r = advkit(['eval', '--model', model, '--data', `folder:${inDir('ansi')}`, '--attacks', 'fgsm', '--eps', '0.1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/red.*notes.txt is not an image/);
    expect(r.stderr).not.toContain('\u001b');
  });
});

describe('9. locks', () => {
  it('SIGTERM releases the lock; a lock from another host is refused naming advkit unlock, which breaks it, and the run resumes', async () => {
    const out = inDir('locked');
    const child = spawn(process.execPath, [CLI, 'attack', '--model', model, '--data', 'mnist', '--limit', '600', '--eps', '0.1', '--steps', '20', '--batch-size', '8', '--workers', '1', '--out', out], { stdio: 'ignore' });
    // Interrupted mid-run: once its run.json is written (after the lock is taken), as a user would.
    for (let i = 0; i < 400 && !(await fsp.stat(path.join(out, 'run.json')).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await fsp.stat(path.join(out, '.advkit-lock')).then(() => true, () => false)).toBe(true);
    child.kill('SIGTERM');
    const signal = await new Promise((r) => child.on('exit', (_code, sig) => r(sig)));
    expect(signal).toBe('SIGTERM'); // killed mid-run, not finished
    await expect(fsp.stat(path.join(out, '.advkit-lock'))).rejects.toThrow();
    await fsp.writeFile(path.join(out, '.advkit-lock'), JSON.stringify({ pid: 4242, host: 'node-7.cluster', started: '2026-12-01T00:00:00Z' }));
    const args = ['attack', '--model', model, '--data', 'mnist', '--limit', '600', '--eps', '0.1', '--steps', '20', '--batch-size', '8', '--workers', '1', '--out', out];
    expectUsageError(args, /pid 4242 on node-7.cluster.*break its lock with advkit unlock/);
    const u = advkit(['unlock', out]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/it was pid 4242 on node-7.cluster, since 2026-12-01T00:00:00Z/);
    expectUsageError(['unlock', out], /holds no advkit lock/);
    const resumed = advkit([...args.slice(0, -4), '--limit', '16', '--out', inDir('fresh')]);
    expect(resumed.code, resumed.stderr).toBe(0);
  });

  it('a merge killed before it finished is done again over its own partial output', async () => {
    const out = inDir('half-merged');
    await fsp.mkdir(path.join(out, 'png'), { recursive: true });
    await fsp.writeFile(path.join(out, '.advkit-merge.json'), JSON.stringify({ schema: 'advkit.merge-in-progress', shards: [] }));
    await fsp.writeFile(path.join(out, 'png', '00000.png'), 'half');
    const shards = [0, 1].map((i) => inDir(`mshard${i}`));
    for (const [i, s] of shards.entries()) expect(advkit(['attack', '--model', model, '--data', data, '--eps', '0.1', '--steps', '1', '--shard', `${i}/2`, '--out', s]).code).toBe(0);
    const r = advkit(['merge', ...shards, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect((await fsp.readdir(out)).sort()).toEqual(['manifest.jsonl', 'png', 'run.json', 'summary.json']);
    expect(os.platform()).toBe('linux');
  });
});
