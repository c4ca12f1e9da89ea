import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildArchitecture } from '../../src/models/architectures.js';
import { saveLayersModel } from '../../src/models/io.js';
import { parseNpy } from '../../src/data/npy.js';
import { advkit, CLI, expectUsageError, snapshot, tempDirWithModel } from './run.js';

let dir: string;
let model: string;
beforeAll(async () => {
  ({ dir, model } = await tempDirWithModel('advkit-attack-', 'mnist-cnn', 3));
});



describe('advkit attack', () => {
  it('writes PNGs, a manifest, npy files and a summary', async () => {
    const out = path.join(dir, 'set1');
    const r = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '20', '--attack', 'pgd', '--eps', '0.3', '--steps', '5', '--batch-size', '8', '--format', 'png,npy', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.examples).toBe(20);
    const files = await fsp.readdir(out);
    expect(files.sort()).toEqual(['manifest.jsonl', 'png', 'run.json', 'summary.json', 'x.npy', 'x_adv.npy', 'y.npy']);
    expect((await fsp.readdir(path.join(out, 'png'))).length).toBe(20);
    const lines = (await fsp.readFile(path.join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const l of lines) {
      expect(l.linf).toBeLessThanOrEqual(0.3 + 1e-6);
      expect(typeof l.successQuantized).toBe('boolean');
      expect(l.success).toBe(l.adversarialPrediction !== l.label);
    }
    const xAdv = parseNpy(await fsp.readFile(path.join(out, 'x_adv.npy')), 'x_adv.npy');
    const x = parseNpy(await fsp.readFile(path.join(out, 'x.npy')), 'x.npy');
    expect(xAdv.shape).toEqual([20, 28, 28, 1]);
    for (let i = 0; i < x.data.length; i++) expect(Math.abs(xAdv.data[i]! - x.data[i]!)).toBeLessThanOrEqual(0.3 + 1e-6);
    expect(summary.successRate).toBeCloseTo(lines.filter((l) => l.success).length / 20, 10);
  });

  it('runs a minimum-norm attack under L1: every manifest line carries its L1 distance, within eps, and the summary its mean', async () => {
    const out = path.join(dir, 'fmn-l1');
    const r = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '6', '--attack', 'fmn', '--norm', 'l1', '--eps', '12', '--steps', '20', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.norm).toBe('l1');
    const lines = (await fsp.readFile(path.join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    for (const l of lines) {
      expect(l.l1).toBeLessThanOrEqual(12 * (1 + 1e-5));
      expect(l.l1).toBeGreaterThanOrEqual(l.l2 - 1e-6);
    }
    const fooled = lines.filter((l) => l.success);
    expect(fooled.length).toBeGreaterThan(0);
    expect(summary.meanL1).toBeCloseTo(fooled.reduce((a: number, l: { l1: number }) => a + l.l1, 0) / fooled.length, 4);
  });

  it('killed mid-run and started again, it ends with the same files, byte for byte, as an uninterrupted run', async () => {
    const args = (out: string) => ['attack', '--model', model, '--data', 'mnist', '--limit', '96', '--attack', 'pgd', '--eps', '0.2', '--steps', '30', '--restarts', '2', '--targeted', 'random', '--batch-size', '8', '--format', 'png,npy', '--out', out, '--seed', '5'];
    const whole = path.join(dir, 'whole');
    expect(advkit(args(whole)).code).toBe(0);

    const cut = path.join(dir, 'cut');
    const child = spawn(process.execPath, [CLI, ...args(cut)], { stdio: 'ignore' });
    // Wait for a few batches to finish, then kill it hard.
    const state = path.join(cut, '.state');
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const n = (await fsp.readdir(state).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).length;
      if (n >= 3) break;
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const partial = (await fsp.readdir(state)).filter((f) => f.endsWith('.json')).length;
    expect(partial).toBeGreaterThanOrEqual(3);
    expect(partial).toBeLessThan(12);
    const again = advkit(args(cut));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/resuming at example \d+ of 96/);

    const a = await snapshot(whole);
    const b = await snapshot(cut);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, bytes] of a) {
      if (name === 'run.json') continue; // names its own output directory
      expect(bytes.equals(b.get(name)!), name).toBe(true);
    }
  });

  it('refuses an output directory holding a different run unless --force', async () => {
    const out = path.join(dir, 'set2');
    const base = ['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--attack', 'fgsm', '--out', out];
    expect(advkit([...base, '--eps', '0.1']).code).toBe(0);
    expectUsageError([...base, '--eps', '0.2'], /holds a different run .*pass --force/);
    expect(advkit([...base, '--eps', '0.2', '--force']).code).toBe(0);
  });

  describe('bad inputs give one line and exit 2', () => {
    const base = () => ['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--out', path.join(dir, `bad-${Math.random()}`)];
    it('eps < 0 or NaN', () => {
      expectUsageError([...base(), '--eps', '-1'], /--eps <eps>.*must be a number >= 0 or a fraction such as 8\/255, in pixel units, got "-1"/);
      expectUsageError([...base(), '--eps', 'NaN'], /--eps <eps>.*must be a number >= 0 or a fraction such as 8\/255, in pixel units, got "NaN"/);
      expectUsageError([...base(), '--eps', '8/0'], /--eps <eps>.*got "8\/0"/);
    });
    it('steps = 0', () => expectUsageError([...base(), '--eps', '0.1', '--steps', '0'], /--steps <n>.*must be between 1/));
    it('an unknown attack', () => expectUsageError([...base(), '--eps', '0.1', '--attack', 'jsma'], /--attack <name>.*Allowed choices are fgsm, bim, pgd, mifgsm/));
    it('an attack under a norm it has no form for', () => {
      expectUsageError([...base(), '--eps', '0.1', '--attack', 'cw', '--norm', 'linf'], /cw runs under l2 only, not linf; the attacks for linf: /);
      expectUsageError([...base(), '--eps', '1', '--attack', 'square', '--norm', 'l1'], /square runs under linf or l2 only, not l1/);
      expectUsageError([...base(), '--eps', '1', '--norm', 'l3'], /--norm <norm>.*Allowed choices are linf, l2, l1/);
    });
    it('an eps larger than the bounds allow (a unit mistake) unless --allow-large-eps', () => {
      expectUsageError([...base(), '--eps', '30'], /Error in --eps: 30 is larger than any L∞ perturbation of images in \[0, 1\] can be \(1\); epsilons are in pixel units \(8\/255, not 8\); pass --allow-large-eps/);
      expectUsageError([...base(), '--eps', '29', '--norm', 'l2'], /Error in --eps: 29 is larger than any L2 perturbation of images in \[0, 1\] can be \(28\)/);
    });
    it('an option the command does not have is unknown, with the one it likely meant', () => {
      expectUsageError([...base(), '--epsilon', '0.1'], /unknown option '--epsilon' for advkit attack \(did you mean --eps\?\)/);
      expectUsageError([...base(), '--eps', '0.1', '--modle', 'm'], /unknown option '--modle' for advkit attack \(did you mean --model\?\)/);
      expectUsageError([...base(), '--eps', '0.1', '--frobnicate'], /^error: unknown option '--frobnicate' for advkit attack$/);
    });
    it('a target class the model does not have', () => expectUsageError([...base(), '--eps', '0.1', '--targeted', '12'], /class 12 does not exist; the model has classes 0..9/));
    it('a model whose input shape differs from the data shows both shapes', async () => {
      const small = path.join(dir, 'small');
      const net = buildArchitecture('mlp', { inputShape: [14, 14, 1] });
      await saveLayersModel(net, small);
      net.dispose();
      expectUsageError(['attack', '--model', small, '--data', 'mnist', '--eps', '0.1', '--out', path.join(dir, 'o-small')], /the model takes inputs of shape \[14, 14, 1\] but the data mnist:test has images of shape \[28, 28, 1\]/);
    });
    it("a model.json with ../ weight paths", async () => {
      const evil = path.join(dir, 'evil');
      await fsp.cp(model, evil, { recursive: true });
      const json = JSON.parse(await fsp.readFile(path.join(evil, 'model.json'), 'utf8'));
      json.weightsManifest[0].paths = ['../model/weights.bin'];
      await fsp.writeFile(path.join(evil, 'model.json'), JSON.stringify(json));
      expectUsageError(['attack', '--model', evil, '--data', 'mnist', '--eps', '0.1', '--out', path.join(dir, 'o-evil')], /points outside the model directory/);
    });
    it('flags that do not fit the attack', () => {
      expectUsageError([...base(), '--eps', '0.1', '--attack', 'fgsm', '--steps', '3'], /fgsm takes one full step/);
      // Which attacks take a flag comes from the registry, and the message names them.
      expectUsageError([...base(), '--eps', '0.1', '--attack', 'apgd-ce', '--loss', 'margin'], /Error in --loss: apgd-ce optimises cross-entropy .*; the attacks that do: fgsm, bim, pgd, mifgsm\.$/);
      expectUsageError([...base(), '--eps', '0.1', '--attack', 'bim', '--restarts', '2'], /Error in --restarts: bim does not take --restarts; the attacks that do: pgd, apgd-ce, apgd-dlr, apgd-t, fab-t\.$/);
      expectUsageError([...base(), '--eps', '0.1', '--attack', 'fab-t', '--targeted', 'random'], /Error in --targeted: fab-t picks its own target classes/);
      expectUsageError([...base(), '--eps', '0.1', '--attack', 'pgd', '--momentum', '0.5'], /Error in --momentum: pgd does not take --momentum; the attacks that do: mifgsm\./);
    });
  });
});
