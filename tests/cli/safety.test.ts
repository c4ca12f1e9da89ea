import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../helpers.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { saveLayersModel } from '../../src/models/io.js';
import { advkit, CLI, expectUsageError } from './run.js';

let dir: string;
let model: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-safety-'));
  model = path.join(dir, 'model');
  const net = buildArchitecture('mlp', { seed: 1 });
  await saveLayersModel(net, model, { advkitVersion: 'test', architecture: 'mlp' });
  net.dispose();
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
    expect(r.stderr).toMatch(/refusing to replace \.\. .*the working directory, one of its parents/);
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

  it('--out naming a file exits 2 before any computation', async () => {
    const file = path.join(dir, 'a-file');
    await fsp.writeFile(file, 'x');
    expectUsageError(attack(file), /Error in --out: cannot create the directory .*a-file \(EEXIST\)/);
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
