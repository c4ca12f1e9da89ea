import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier, modelDigest } from '../../src/models/io.js';
import { loadDataset } from '../../src/data/index.js';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { encodeNpy } from '../../src/data/npy.js';
import { advkit, CLI, expectUsageError, tempDirWithModel } from './run.js';

let dir: string;
let model: string;
beforeAll(async () => {
  ({ dir, model } = await tempDirWithModel('advkit-safety-', 'mlp', 1));
});

const attack = (out: string) => ['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--attack', 'fgsm', '--eps', '0.1', '--out', out];

describe('--force replaces only what advkit wrote', () => {
  it('a directory with files advkit did not write is refused, --force or not, and left as it was', async () => {
    const out = path.join(dir, 'mine');
    await fsp.mkdir(out);
    await fsp.writeFile(path.join(out, 'thesis.tex'), 'years of work');
    for (const force of [[], ['--force']]) expectUsageError([...attack(out), ...force], /holds files advkit did not write \(thesis.tex\); advkit replaces only its own output directories/);
    expect(await fsp.readFile(path.join(out, 'thesis.tex'), 'utf8')).toBe('years of work');
    expect((await fsp.readdir(out)).sort()).toEqual(['thesis.tex']);
  });

  it('--out .. --force from a sub-folder is refused: never the working directory or its parents', async () => {
    const parent = path.join(dir, 'parent');
    const sub = path.join(parent, 'sub');
    // Make the parent look like an advkit run, so only the parent rule can refuse it.
    expect(advkit(attack(parent)).code).toBe(0);
    await fsp.mkdir(sub, { recursive: true });
    const r = spawnSync(process.execPath, [CLI, ...attack('..').map((a) => (a === '0.1' ? '0.2' : a)), '--force'], { cwd: sub, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/refusing to replace .*parent .*it is the working directory, one of its parents/);
    expect(await fsp.stat(sub)).toBeTruthy();
    expect(await fsp.stat(path.join(parent, 'run.json'))).toBeTruthy();
  });

  it('--force replaces a finished advkit run', async () => {
    const out = path.join(dir, 'replace');
    expect(advkit(attack(out)).code).toBe(0);
    const again = advkit([...attack(out).map((a) => (a === '0.1' ? '0.2' : a)), '--force', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).eps).toBe(0.2);
  });
});

describe('one writer per output directory', () => {
  it('a second writer exits 2 naming the holder; a lock left by a dead process is taken over', async () => {
    const out = path.join(dir, 'locked');
    await fsp.mkdir(out);
    // A live holder: this test process.
    await fsp.writeFile(path.join(out, '.advkit-lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), started: 'now' }));
    expectUsageError(attack(out), new RegExp(`is being written by another advkit run \\(pid ${process.pid} on `));
    expectUsageError(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'fgsm', '--eps', '0.1', '--no-checks', '--out', out], /is being written by another advkit run/);
    // A dead holder (kill -9 leaves its lock behind).
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    await fsp.writeFile(path.join(out, '.advkit-lock'), JSON.stringify({ pid: Number(dead.stdout), host: os.hostname(), started: 'then' }));
    const r = advkit(attack(out));
    expect(r.code, r.stderr).toBe(0);
    expect((await fsp.readdir(out)).includes('.advkit-lock')).toBe(false);
  });

  it('a corrupt run.json in --out and an --out under /proc exit 2 at once', async () => {
    const out = path.join(dir, 'corrupt');
    await fsp.mkdir(out);
    await fsp.writeFile(path.join(out, 'run.json'), '{"config": ');
    expectUsageError(attack(out), /run.json is not an advkit run record/);
    const t0 = Date.now();
    expectUsageError(attack('/proc/advkit-test/out'), /Error in --out: cannot create the directory \/proc\/advkit-test\/out/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('--out naming a file exits 2 before any computation', async () => {
    const file = path.join(dir, 'a-file');
    await fsp.writeFile(file, 'x');
    expectUsageError(attack(file), /Error in --out: cannot create the directory .*a-file \(ENOTDIR\)/);
    expectUsageError(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'fgsm', '--eps', '0.1', '--out', file], /Error in --out: cannot create the directory/);
    expect(await fsp.readFile(file, 'utf8')).toBe('x');
  });
});

describe('advkit eval resumes', () => {
  it('killed with SIGKILL mid-run and started again, it skips the finished steps and reports the same figures', async () => {
    const args = (out: string) => ['eval', '--model', model, '--data', 'mnist', '--limit', '40', '--attacks', 'fgsm,pgd,apgd-ce', '--eps', '0.05,0.1,0.2', '--steps', '20', '--batch-size', '8', '--no-checks', '--workers', '1', '--out', out];
    const whole = path.join(dir, 'eval-whole');
    expect(advkit(args(whole)).code).toBe(0);
    const cut = path.join(dir, 'eval-cut');
    const child = spawn(process.execPath, [CLI, ...args(cut)], { stdio: 'ignore' });
    const state = path.join(cut, '.state', 'eval.json');
    let steps = 0;
    for (let i = 0; i < 600 && steps < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      steps = await fsp.readFile(state, 'utf8').then((t) => JSON.parse(t).state.steps as number, () => 0);
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(steps).toBeGreaterThanOrEqual(2);
    const again = advkit(args(cut));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/resuming the evaluation after \d+ of 9 steps/);
    const strip = (file: string) => fsp.readFile(file, 'utf8').then((t) => {
      const r = JSON.parse(t);
      delete r.timing;
      for (const e of r.results) for (const a of e.attacks) delete a.seconds;
      return r;
    });
    expect(await strip(path.join(cut, 'report.json'))).toEqual(await strip(path.join(whole, 'report.json')));
    expect(await fsp.stat(path.join(cut, '.state')).catch(() => null)).toBeNull();
  });
});

describe('untrusted model and data files', () => {
  async function copyModel(name: string): Promise<string> {
    const d = path.join(dir, name);
    await fsp.cp(model, d, { recursive: true });
    return d;
  }

  it('a weights file that links out of the model directory, or is a FIFO or device, is refused before it is read', async () => {
    const outside = await copyModel('outside');
    await fsp.rename(path.join(outside, 'weights.bin'), path.join(dir, 'stolen.bin'));
    await fsp.symlink(path.join(dir, 'stolen.bin'), path.join(outside, 'weights.bin'));
    await expect(loadClassifier(outside)).rejects.toThrow(/weight file weights.bin is a link to .*stolen.bin, outside the model directory/);
    await expect(modelDigest(outside)).rejects.toThrow(/outside the model directory/);
    const fifo = await copyModel('fifo');
    await fsp.rm(path.join(fifo, 'weights.bin'));
    expect(spawnSync('mkfifo', [path.join(fifo, 'weights.bin')]).status).toBe(0);
    await expect(loadClassifier(fifo)).rejects.toThrow(/weight file weights.bin is not a regular file \(a FIFO\)/);
    await expect(modelDigest(fifo)).rejects.toThrow(/not a regular file \(a FIFO\)/);
    const fifoJson = path.join(dir, 'fifo-json');
    await fsp.mkdir(fifoJson);
    expect(spawnSync('mkfifo', [path.join(fifoJson, 'model.json')]).status).toBe(0);
    await expect(loadClassifier(fifoJson)).rejects.toThrow(/model.json is not a regular file \(a FIFO\)/);
    const zero = await copyModel('zero');
    await fsp.rm(path.join(zero, 'weights.bin'));
    await fsp.symlink('/dev/zero', path.join(zero, 'weights.bin'));
    await expect(loadClassifier(zero)).rejects.toThrow(/outside the model directory|not a regular file/);
    expectUsageError(['eval', '--model', fifo, '--data', 'mnist', '--limit', '4', '--attacks', 'fgsm', '--eps', '0.1'], /not a regular file \(a FIFO\)/);
  });

  it('a NaN weight is refused at load', async () => {
    const nan = await copyModel('nan');
    const w = await fsp.readFile(path.join(nan, 'weights.bin'));
    w.writeFloatLE(NaN, 8);
    await fsp.writeFile(path.join(nan, 'weights.bin'), w);
    await expect(loadClassifier(nan)).rejects.toThrow(/holds NaN at flat index 2; a model with non-finite weights gives meaningless results/);
  });

  it('npy:/dev/zero, a FIFO and a gzip bomb are refused at once, with bounded memory', async () => {
    const y = path.join(dir, 'y.npy');
    await fsp.writeFile(y, Buffer.from('x'));
    await expect(loadDataset(`npy:/dev/zero,${y}`)).rejects.toThrow(/\/dev\/zero: not a regular file \(a device or socket\)/);
    const fifo = path.join(dir, 'data-fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expect(loadDataset(`npy:${fifo},${y}`)).rejects.toThrow(/not a regular file \(a FIFO\)/);
    // 60 million 28x28 images claimed by a 10 KB file.
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x00000803, 0);
    header.writeUInt32BE(60_000_000, 4);
    header.writeUInt32BE(28, 8);
    header.writeUInt32BE(28, 12);
    const bomb = path.join(dir, 'bomb.gz');
    await fsp.writeFile(bomb, gzipSync(Buffer.concat([header, Buffer.alloc(8 << 20)])));
    const rss = process.memoryUsage().rss;
    await expect(loadDataset(`idx:${bomb},${bomb}`)).rejects.toThrow(/header declares 47040000016 bytes of data, more than the 1073741824 allowed/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200e6);
  });
});

describe('garbage in is refused, not reported as results', () => {
  it('folder: labels numbered class folders by their numbers (3/ and 9/ are classes 3 and 9)', async () => {
    const root = path.join(dir, 'digits');
    for (const cls of ['3', '9', '10']) {
      await fsp.mkdir(path.join(root, cls), { recursive: true });
      await sharp(Buffer.alloc(28 * 28, 40 * Number(cls)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(path.join(root, cls, 'a.png'));
    }
    const ds = await loadDataset(`folder:${root}`);
    expect(Array.from(ds.labels)).toEqual([10, 3, 9]);
    await expect(loadDataset(`folder:${root}`, { classNames: ['zero', 'one'] })).rejects.toThrow(/class folder "10" is not one of the model's classes \("zero", "one"\)/);
    const named = await loadDataset(`folder:${root}`, { classNames: Array.from({ length: 11 }, (_, i) => String(i)) });
    expect(Array.from(named.labels)).toEqual([10, 3, 9]);
  });

  it('labels >= the model\'s classes exit 2 in eval and certify; a 2^31-1 label exits 2 in train', async () => {
    const x = path.join(dir, 'x.npy');
    const y = path.join(dir, 'y12.npy');
    await fsp.writeFile(x, encodeNpy(new Float32Array(2 * 784).fill(0.5), [2, 28, 28, 1]));
    await fsp.writeFile(y, encodeNpy(Int32Array.from([1, 12]), [2]));
    expectUsageError(['eval', '--model', model, '--data', `npy:${x},${y}`, '--attacks', 'fgsm', '--eps', '0.1', '--no-checks'], /example 1 .* has label 12 but the model has 10 classes/);
    expectUsageError(['certify', '--model', model, '--data', `npy:${x},${y}`, '--sigma', '0.25', '--n', '100'], /example 1 has label 12 but the model has 10 classes/);
    const huge = path.join(dir, 'yhuge.npy');
    await fsp.writeFile(huge, encodeNpy(Int32Array.from([1, 2 ** 31 - 1]), [2]));
    expectUsageError(['train', '--arch', 'mlp', '--data', `npy:${x},${huge}`, '--out', path.join(dir, 'never')], /labels go up to 2147483647, which would make 2147483648 classes \(more than 100000\)/);
  });

  it('bad --config contents, --fpr 1, huge --batches and --n, an unwritable --cache exit 2 with one line', async () => {
    const cfg = (name: string, text: string) => { const f = path.join(dir, name); return fsp.writeFile(f, text).then(() => f); };
    expectUsageError(['eval', '--config', await cfg('null.json', 'null')], /must hold a JSON object of options/);
    expectUsageError(['eval', '--config', await cfg('attacks5.json', '{"attacks": 5}')], /"attacks" in .* must be a string, got 5/);
    expectUsageError(['eval', '--config', await cfg('steps.json', '{"steps": 2.5}')], /"steps" in .* must be a integer, got 2.5/);
    expectUsageError(['detect', '--model', model, '--adversarial', 'mnist', '--clean', 'mnist', '--fpr', '1'], /--fpr <f>.*must be <= 0.999999/);
    expectUsageError(['bench', '--batches', '100000000'], /--batches.*integers from 1 to 4096/);
    expectUsageError(['certify', '--model', model, '--data', 'mnist', '--sigma', '0.25', '--n', '1000000000000'], /--n <n>.*must be between 1 and 10000000/);
    expectUsageError(['demo', '--cache', '/etc/passwd'], /Error in --cache: cannot write in \/etc\/passwd/);
  });

  it('--workers above the core count is capped with a warning', () => {
    const r = advkit([...attack(path.join(dir, 'many-workers')), '--limit', '300', '--batch-size', '50', '--workers', '256']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`--workers 256 is more than the ${os.availableParallelism()} cores here; using ${os.availableParallelism()}`));
  });

  it('defend --out that links to the input is refused and the input is left as it was', async () => {
    const input = path.join(dir, 'replace');
    const before = await fsp.readFile(path.join(input, 'manifest.jsonl'));
    const link = path.join(dir, 'link-to-input');
    await fsp.symlink(input, link);
    expectUsageError(['defend', '--input', input, '--defense', 'median:3', '--out', link, '--force'], /once links are resolved; the inputs would be overwritten/);
    expect((await fsp.readFile(path.join(input, 'manifest.jsonl'))).equals(before)).toBe(true);
  });
});
