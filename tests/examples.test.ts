import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('examples run, so they cannot rot', () => {
  it('pgd_sweep prints a robust-accuracy table that falls with eps', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'dist/examples/pgd_sweep.js'), '--limit', '40'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').filter((l) => /^\d\.\d\d /.test(l)).map((l) => l.split(/\s+/).map((v) => parseFloat(v)));
    expect(rows.length).toBe(6);
    const pgdCol = rows.map((row) => row[2]!);
    for (let i = 1; i < pgdCol.length; i++) expect(pgdCol[i]!).toBeLessThanOrEqual(pgdCol[i - 1]!);
    expect(pgdCol[0]!).toBeGreaterThan(pgdCol[5]!);
  });
});
