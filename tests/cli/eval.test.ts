import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMnist, take } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { saveLayersModel } from '../../src/models/io.js';
import { trainClassifier } from '../../src/defenses/train.js';
import { useBackend } from '../helpers.js';
import { advkit } from './run.js';

let dir: string;
let model: string;
beforeAll(async () => {
  await useBackend('wasm');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-eval-'));
  model = path.join(dir, 'model');
  const net = buildArchitecture('mlp', { seed: 2 });
  await trainClassifier(net, take(loadMnist('train'), 1500), { epochs: 2, seed: 2 });
  await saveLayersModel(net, model, { advkitVersion: 'test' });
  net.dispose();
});

const base = () => ['eval', '--model', model, '--data', 'mnist', '--limit', '48', '--no-checks', '--attacks', 'fgsm,pgd', '--eps', '0,0.1', '--steps', '5', '--seed', '3'];

describe('advkit eval', () => {
  it("its PGD robust accuracy equals what advkit attack measures for the same configuration and seed", () => {
    const ev = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '48', '--no-checks', '--attacks', 'pgd', '--eps', '0.1', '--steps', '5', '--seed', '3', '--batch-size', '16', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const report = JSON.parse(ev.stdout).report;
    const at = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '48', '--attack', 'pgd', '--eps', '0.1', '--steps', '5', '--seed', '3', '--batch-size', '32', '--out', path.join(dir, 'atk'), '--json']);
    expect(at.code, at.stderr).toBe(0);
    expect(report.results[0].attacks[0].robustAccuracy).toBeCloseTo(JSON.parse(at.stdout).robustAccuracy, 10);
    expect(report.cleanAccuracy).toBeCloseTo(JSON.parse(at.stdout).cleanAccuracy, 10);
  });

  it('--preset minimum-norm --norm l2 runs FMN, Carlini–Wagner, DeepFool and FAB-T once and prints the median distance and who found it', () => {
    const r = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '6', '--no-checks', '--preset', 'minimum-norm', '--norm', 'l2', '--eps', '0.5,1,2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/minimum-norm \(fmn, cw, deepfool, fab-t\): median L2 distance to a wrong class [0-9.]+ \(closest found by [a-z-]+ \d/);
    const bad = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '6', '--no-checks', '--attacks', 'ead', '--norm', 'l2', '--eps', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/ead runs under l1 only, not l2; the attacks for l2: /);
  });

  it('writes report.json, report.md, report.html and examples.png with --out, and prints the table', async () => {
    const out = path.join(dir, 'report');
    const r = advkit([...base(), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/eps\s+FGSM\s+\+PGD\s+worst case/);
    expect((await fsp.readdir(out)).sort()).toEqual(['examples.png', 'report.html', 'report.json', 'report.md']);
  });

  it('gates: pass exits 0, a failed threshold exits 1, a failed baseline exits 1, bad assertion syntax exits 2', async () => {
    const pass = advkit([...base(), '--assert', 'clean>=0.5', '--assert', 'worst@0.1>=0', '--junit', path.join(dir, 'pass.xml')]);
    expect(pass.code, pass.stderr).toBe(0);
    expect(await fsp.readFile(path.join(dir, 'pass.xml'), 'utf8')).toMatch(/tests="2" failures="0"/);

    const fail = advkit([...base(), '--assert', 'pgd@0.1>=0.999', '--junit', path.join(dir, 'fail.xml')]);
    expect(fail.code).toBe(1);
    expect(fail.stdout).toMatch(/FAIL pgd@0.1>=0.999/);
    expect(await fsp.readFile(path.join(dir, 'fail.xml'), 'utf8')).toMatch(/failures="1"/);

    // A baseline that claims a far better model: every figure dropped.
    const ok = advkit([...base(), '--json']);
    const report = JSON.parse(ok.stdout).report;
    report.cleanAccuracy = 1;
    for (const r of report.results) r.worstCase.robustAccuracy = 1;
    await fsp.writeFile(path.join(dir, 'baseline.json'), JSON.stringify(report));
    const drop = advkit([...base(), '--baseline', path.join(dir, 'baseline.json'), '--max-drop', '0.02']);
    expect(drop.code).toBe(1);
    expect(drop.stdout).toMatch(/FAIL baseline worst@0.1/);

    const bad = advkit([...base(), '--assert', 'pgd@0.1 => 0.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Error in --assert: cannot parse "pgd@0.1 => 0.5"/);
  });

  it('reads a --config file, with flags winning', async () => {
    const cfg = path.join(dir, 'robustness.json');
    await fsp.writeFile(cfg, JSON.stringify({ model, data: 'mnist', limit: 16, attacks: ['fgsm'], eps: [0.05, 0.1], checks: false, assert: ['clean>=0.99'] }));
    const r = advkit(['eval', '--config', cfg, '--json']);
    const out = JSON.parse(r.stdout);
    expect(out.report.config.epsilons).toEqual([0.05, 0.1]);
    expect(out.report.data.examples).toBe(16);
    expect(r.code).toBe(out.gates[0].passed ? 0 : 1);
    const flagWins = advkit(['eval', '--config', cfg, '--eps', '0.2', '--json']);
    expect(JSON.parse(flagWins.stdout).report.config.epsilons).toEqual([0.2]);
    await fsp.writeFile(path.join(dir, 'bad.json'), JSON.stringify({ epsilon: [0.1] }));
    const bad = advkit(['eval', '--config', path.join(dir, 'bad.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown key\(s\) epsilon/);
  });

  it('bad usage exits 2 with one line', () => {
    const r = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1,-2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Error in --eps: "0.1,-2" must be a comma list of numbers >= 0/);
    const a = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--attacks', 'pgd,jsma']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown attack "jsma"/);
    const both = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--attacks', 'pgd', '--preset', 'fast']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/Error in --preset: give --preset fast or --attacks pgd, not both/);
    // A flag none of the run's attacks reads is refused, not ignored (the registry says who reads it).
    const unread = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--attacks', 'fgsm,square', '--steps', '5']);
    expect(unread.code).toBe(2);
    expect(unread.stderr).toMatch(/Error in --steps: none of this run's attacks \(fgsm, square\) reads it; the attacks that do: bim, pgd/);
    const unknown = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--preset', 'strong']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--preset/);
  });

  it('--preset fast runs its ensemble and the report calls it partial; changing a preset with --steps says so', () => {
    const r = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '24', '--no-checks', '--preset', 'fast', '--eps', '0.1', '--json']);
    expect(r.code).toBe(0);
    const { report } = JSON.parse(r.stdout);
    expect(report.config.preset).toBe('fast');
    expect(report.config.attacks.map((a: { name: string }) => a.name)).toEqual(['apgd-ce', 'apgd-t', 'square']);
    expect(report.evaluation.complete).toBe(false);
    const changed = advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '8', '--no-checks', '--preset', 'fast', '--steps', '3', '--eps', '0.1', '--json']);
    expect(changed.code).toBe(0);
    const c = JSON.parse(changed.stdout).report;
    expect(c.config.preset).toBeNull();
    expect(c.config.attacks[0].options.steps).toBe(3);
    expect(changed.stderr).toMatch(/change the fast preset/);
  });
});

describe('advkit eval --defense', () => {
  it('BPDA breaks bit-depth reduction while differentiating the rounding shows an illusion of robustness', () => {
    const run = (mode: string) => JSON.parse(advkit(['eval', '--model', model, '--data', 'mnist', '--limit', '32', '--no-checks', '--attacks', 'pgd', '--eps', '0.3', '--steps', '10', '--defense', 'bit-depth:4', '--defense-gradient', mode, '--json']).stdout).report;
    const honest = run('auto');
    const naive = run('exact');
    expect(honest.model.defense).toBe('bit-depth(4): BPDA (identity)');
    expect(naive.model.defense).toBe('bit-depth(4): exact gradient');
    expect(naive.results[0].worstCase.robustAccuracy).toBeGreaterThan(honest.results[0].worstCase.robustAccuracy + 0.3);
  });

  it('rejects an even median window, a JPEG quality outside 1..100 and an unknown preprocessor with exit 2', () => {
    const even = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--defense', 'median:4']);
    expect(even.code).toBe(2);
    expect(even.stderr).toMatch(/k must be odd .* but got 4/);
    const unknown = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--defense', 'blur:3']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/"blur:3" is not a known preprocessor/);
    const quality = advkit(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--defense', 'jpeg:101']);
    expect(quality.code).toBe(2);
    expect(quality.stderr).toMatch(/Error in --defense: quality must be <= 100, but got 101/);
  });
});
