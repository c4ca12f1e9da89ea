/**
 * The rough edges a newcomer hits: fractional epsilons, the attack flags shared by `attack` and
 * `eval`, `square` and `--defense` on `attack`, folder manifests naming their source files, the
 * CLI's cold start.
 */
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { uniform } from '../helpers.js';
import { advkit, CLI, expectUsageError, tempDirWithModel } from './run.js';

let dir: string;
let model: string;

beforeAll(async () => {
  ({ dir, model } = await tempDirWithModel('advkit-ergonomics-', 'mlp', 3));
  for (const cls of ['three', 'seven']) {
    await fsp.mkdir(path.join(dir, 'digits', cls), { recursive: true });
    for (let i = 0; i < 2; i++) {
      const px = Buffer.from(uniform(40 * 40, 7 * i + cls.length, 0, 255).map(Math.round));
      await sharp(px, { raw: { width: 40, height: 40, channels: 1 } }).png().toFile(path.join(dir, 'digits', cls, `${cls}_${i}.png`));
    }
  }
});

describe('CLI ergonomics', () => {
  it('--eps takes fractions as PyTorch users write them, in attack and eval', async () => {
    const out = path.join(dir, 'frac');
    const r = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--eps', '8/255', '--steps', '2', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).eps).toBeCloseTo(8 / 255, 12);
    const ev = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'fgsm', '--eps', '0,4/255,8/255', '--no-checks', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(JSON.parse(ev.stdout).report.results.map((x: { eps: number }) => x.eps)).toEqual([0, 4 / 255, 8 / 255]);
    expectUsageError(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'fgsm', '--eps', '0,8'], /Error in --eps: 8 is larger than any L∞ perturbation/);
    const big = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'fgsm', '--eps', '0,8', '--allow-large-eps', '--no-checks', '--json']);
    expect(big.code, big.stderr).toBe(0);
  });

  it('eval takes the attack flags attack takes, applied to the attacks that read them', () => {
    const r = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'mifgsm,pgd', '--eps', '0.1', '--steps', '3', '--momentum', '0.5', '--step-size', '0.02', '--early-stop', '--no-checks', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { report } = JSON.parse(r.stdout);
    const byName = Object.fromEntries(report.config.attacks.map((a: { name: string; options: object }) => [a.name, a.options]));
    expect(byName.mifgsm).toMatchObject({ steps: 3, momentum: 0.5, absStepSize: 0.02, earlyStop: true });
    expect(byName.pgd).toMatchObject({ steps: 3, absStepSize: 0.02, earlyStop: true });
    expect(byName.pgd.momentum).toBeUndefined();
    expectUsageError(['eval', '--model', model, '--data', 'mnist', '--limit', '4', '--attacks', 'pgd', '--eps', '0.1', '--momentum', '0.5'], /Error in --momentum: none of this run's attacks \(pgd\) reads it; the attacks that do: mifgsm/);
  });

  it('attack runs square with --square-queries and attacks a --defense chain', async () => {
    const sq = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--attack', 'square', '--eps', '0.3', '--square-queries', '20', '--out', path.join(dir, 'sq'), '--json']);
    expect(sq.code, sq.stderr).toBe(0);
    expect(JSON.parse(sq.stdout).attack).toBe('square');
    expectUsageError(['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--attack', 'square', '--eps', '0.3', '--steps', '3', '--out', path.join(dir, 'sq2')], /Error in --steps: square counts queries, not steps/);
    const def = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '4', '--eps', '0.1', '--steps', '2', '--defense', 'bit-depth:4', '--out', path.join(dir, 'def'), '--json']);
    expect(def.code, def.stderr).toBe(0);
  });

  it('the manifest of a folder attack names each example\'s source file and class', async () => {
    const out = path.join(dir, 'folder-set');
    const r = advkit(['attack', '--model', model, '--data', `folder:${path.join(dir, 'digits')}`, '--eps', '0.1', '--steps', '2', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/4 of 4 images of folder:.* resized to 28x28/);
    const lines = (await fsp.readFile(path.join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.source, l.className])).toEqual([['seven/seven_0.png', 'seven'], ['seven/seven_1.png', 'seven'], ['three/three_0.png', 'three'], ['three/three_1.png', 'three']]);
  });

  it('advkit --help lists every command without loading TensorFlow.js', () => {
    // A preload that fails any require of tfjs: the help must not need it.
    const trap = path.join(dir, 'trap.cjs');
    const code = "const M = require('module'); const load = M._load; M._load = function (r, ...a) { if (/^@tensorflow\\//.test(r)) throw new Error('loaded ' + r); return load.call(this, r, ...a); };";
    return fsp.writeFile(trap, code).then(() => {
      const r = spawnSync(process.execPath, ['--require', trap, CLI, '--help'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      for (const c of ['demo', 'info', 'inspect', 'train', 'attack', 'eval', 'merge', 'defend', 'certify', 'detect', 'bench']) expect(r.stdout).toContain(`  ${c}`);
      // The trap works: a command that needs tfjs fails under it.
      const info = spawnSync(process.execPath, ['--require', trap, CLI, 'info'], { encoding: 'utf8' });
      expect(info.status).not.toBe(0);
    });
  });
});
