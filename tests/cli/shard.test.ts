import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { advkit, CLI, expectUsageError, type CliResult, snapshot, tempDirWithModel } from './run.js';

let dir: string;
let model: string;
beforeAll(async () => {
  ({ dir, model } = await tempDirWithModel('advkit-shard-', 'mnist-cnn', 5));
});

/** Runs advkit commands as separate processes at the same time, as a batch engine would. */
function inParallel(runs: Array<{ args: string[]; env?: Record<string, string> }>): Promise<CliResult[]> {
  return Promise.all(runs.map(({ args, env }) => new Promise<CliResult>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  })));
}


const sha256 = (...bufs: Buffer[]) => { const h = createHash('sha256'); for (const b of bufs) h.update(b); return h.digest('hex'); };

describe('sharded runs and advkit merge', () => {
  const attackArgs = (out: string) => ['attack', '--model', model, '--data', 'mnist', '--limit', '40', '--attack', 'pgd', '--eps', '0.2', '--steps', '6', '--targeted', 'random', '--batch-size', '6', '--format', 'png,npy', '--seed', '4', '--workers', '1', '--out', out];

  it('a 3-way sharded attack, run as three processes and merged, writes the unsharded example set byte for byte', async () => {
    const whole = path.join(dir, 'whole');
    expect(advkit(attackArgs(whole)).code).toBe(0);
    // Shard 0 by flag, shard 1 by a Kubernetes index, shard 2 by a Slurm array index.
    const runs = await inParallel([
      { args: [...attackArgs(path.join(dir, 'a0')), '--shard', '0/3'] },
      { args: [...attackArgs(path.join(dir, 'a1')), '--shard-count', '3'], env: { JOB_COMPLETION_INDEX: '1' } },
      { args: [...attackArgs(path.join(dir, 'a2')), '--shard-count', '3'], env: { SLURM_ARRAY_TASK_ID: '2' } },
    ]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs[1]!.stderr).toMatch(/shard 1\/3: examples 13..25 of 40/);
    const shard1 = (await fsp.readFile(path.join(dir, 'a1', 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(shard1.map((l) => l.index)).toEqual(Array.from({ length: 13 }, (_, k) => 13 + k));
    const merged = advkit(['merge', path.join(dir, 'a2'), path.join(dir, 'a0'), path.join(dir, 'a1'), '--out', path.join(dir, 'amerged'), '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    expect(JSON.parse(merged.stdout).examples).toBe(40);
    const a = await snapshot(whole);
    const b = await snapshot(path.join(dir, 'amerged'));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, bytes] of a) expect(bytes.equals(b.get(name)!), name).toBe(true);
  });

  it('merging a missing, duplicate, unfinished or foreign shard exits 2 with one line and writes nothing', async () => {
    const out = path.join(dir, 'bad-merge');
    expectUsageError(['merge', path.join(dir, 'a0'), path.join(dir, 'a2'), '--out', out], /shard\(s\) 1\/3 missing; give all 3 shard directories/);
    expectUsageError(['merge', path.join(dir, 'a0'), path.join(dir, 'a1'), path.join(dir, 'a1'), path.join(dir, 'a2'), '--out', out], /shard 1\/3 is given twice/);
    const other = path.join(dir, 'other1');
    expect(advkit([...attackArgs(other).map((v) => (v === '0.2' ? '0.1' : v)), '--shard', '1/3']).code).toBe(0);
    expectUsageError(['merge', path.join(dir, 'a0'), other, path.join(dir, 'a2'), '--out', out], /other1 comes from a different run than .*a0/);
    expectUsageError(['merge', path.join(dir, 'a0'), path.join(dir, 'whole'), '--out', out], /whole is not a shard/);
    const unfinished = path.join(dir, 'unfinished');
    await fsp.cp(path.join(dir, 'a1'), unfinished, { recursive: true });
    const run = JSON.parse(await fsp.readFile(path.join(unfinished, 'run.json'), 'utf8'));
    await fsp.writeFile(path.join(unfinished, 'run.json'), JSON.stringify({ ...run, complete: false }));
    expectUsageError(['merge', path.join(dir, 'a0'), unfinished, path.join(dir, 'a2'), '--out', out], /shard 1\/3 in .*unfinished is unfinished/);
    expectUsageError(['merge', path.join(dir, 'a0'), model, '--out', out], /holds no advkit example set/);
    expect(await fsp.stat(out).catch(() => null)).toBeNull();
  });

  it('records the SHA-256 of the model files and refuses a model other than --expect-model-sha256', async () => {
    const files = await Promise.all(['model.json', 'weights.bin', 'advkit.json'].map((f) => fsp.readFile(path.join(model, f))));
    const summary = JSON.parse(await fsp.readFile(path.join(dir, 'whole', 'summary.json'), 'utf8'));
    expect(summary.provenance.model.sha256).toBe(sha256(...files));
    expect(summary.provenance.model.files['weights.bin']).toBe(sha256(files[1]!));
    expect(summary.provenance.data).toMatchObject({ name: 'mnist:test', examples: 40 });
    expect(summary.provenance.data.sha256).toMatch(/^[0-9a-f]{64}$/);
    const evalArgs = ['eval', '--model', model, '--data', 'mnist', '--limit', '8', '--attacks', 'fgsm', '--eps', '0.1', '--no-checks', '--json'];
    const ok = advkit([...evalArgs, '--expect-model-sha256', sha256(...files)]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).report.provenance.model.sha256).toBe(sha256(...files));
    expectUsageError([...evalArgs, '--expect-model-sha256', 'ab'.repeat(32)], /Error in --expect-model-sha256: the model in .* has SHA-256 [0-9a-f]{64}, not the expected abab/);
    expectUsageError([...evalArgs, '--expect-model-sha256', 'xyz'], /must be 64 hex digits/);
  });

  it('a 2-way sharded eval, merged, reports what the unsharded eval reports (timing aside), sanity checks included', async () => {
    const evalArgs = (out: string) => ['eval', '--model', model, '--data', 'mnist', '--limit', '24', '--eps', '0,0.1,0.3', '--attacks', 'pgd,fab-t,square', '--steps', '5', '--square-queries', '40', '--batch-size', '8', '--checks-limit', '8', '--workers', '1', '--out', out];
    const whole = advkit([...evalArgs(path.join(dir, 'ewhole')), '--json']);
    expect(whole.code, whole.stderr).toBe(0);
    const runs = await inParallel([0, 1].map((i) => ({ args: [...evalArgs(path.join(dir, `e${i}`)), '--shard', `${i}/2`] })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const shard0 = JSON.parse(await fsp.readFile(path.join(dir, 'e0', 'report.json'), 'utf8'));
    expect(shard0.checks).toEqual([]);
    expect(shard0.shard).toMatchObject({ index: 0, count: 2, start: 0, end: 12 });
    const merged = advkit(['merge', path.join(dir, 'e0'), path.join(dir, 'e1'), '--out', path.join(dir, 'emerged'), '--assert', 'clean>=0', '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stderr).toMatch(/running the sanity checks once, on the whole set/);
    const strip = (r: Record<string, any>) => {
      const { timing: _t, createdBy: _c, ...rest } = r;
      return { ...rest, results: r.results.map((e: any) => ({ ...e, attacks: e.attacks.map(({ seconds: _s, ...a }: any) => a) })) };
    };
    const a = JSON.parse(await fsp.readFile(path.join(dir, 'ewhole', 'report.json'), 'utf8'));
    const b = JSON.parse(await fsp.readFile(path.join(dir, 'emerged', 'report.json'), 'utf8'));
    expect(b.shard).toBeUndefined();
    expect(b.checks.length).toBeGreaterThan(5);
    expect(strip(b)).toEqual(strip(a));
    expect(JSON.parse(merged.stdout).gates[0].passed).toBe(true);
    // Without the model, the merged report says the checks did not run.
    const noChecks = advkit(['merge', path.join(dir, 'e0'), path.join(dir, 'e1'), '--out', path.join(dir, 'emerged2'), '--no-checks', '--json']);
    expect(noChecks.code, noChecks.stderr).toBe(0);
    expect(JSON.parse(noChecks.stdout).report.checks.map((c: { id: string }) => c.id)).toEqual(['checks-not-run']);
    // A shard's report cannot gate, and a shard needs --out.
    expectUsageError([...evalArgs(path.join(dir, 'e9')), '--shard', '0/2', '--assert', 'clean>=0.5'], /gates .* judge the whole set/);
    expectUsageError(['eval', '--model', model, '--data', 'mnist', '--eps', '0.1', '--shard', '0/2'], /a shard's report is for advkit merge; give --out DIR/);
  });

  it('a 2-way sharded certify, merged, writes the unsharded certify.json byte for byte', async () => {
    const args = (out: string) => ['certify', '--model', model, '--data', 'mnist', '--limit', '9', '--sigma', '0.25', '--n', '100', '--n0', '20', '--alpha', '0.01', '--batch-size', '50', '--out', out];
    expect(advkit(args(path.join(dir, 'cwhole'))).code).toBe(0);
    const runs = await inParallel([0, 1].map((i) => ({ args: [...args(path.join(dir, `c${i}`)), '--shard', `${i}/2`] })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const shard1 = JSON.parse(await fsp.readFile(path.join(dir, 'c1', 'certify.json'), 'utf8'));
    expect(shard1.shard).toMatchObject({ index: 1, count: 2, start: 4, end: 9 });
    expect(shard1.certificates).toHaveLength(5);
    const merged = advkit(['merge', path.join(dir, 'c1'), path.join(dir, 'c0'), '--out', path.join(dir, 'cmerged'), '--json']);
    expect(merged.code, merged.stderr).toBe(0);
    expect(JSON.parse(merged.stdout).examples).toBe(9);
    const a = await fsp.readFile(path.join(dir, 'cwhole', 'certify.json'));
    expect((await fsp.readFile(path.join(dir, 'cmerged', 'certify.json'))).equals(a)).toBe(true);
    expectUsageError(['merge', path.join(dir, 'c0'), '--out', path.join(dir, 'cbad')], /shard\(s\) 1\/2 missing/);
  });
});
