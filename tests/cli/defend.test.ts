import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseNpy } from '../../src/data/npy.js';
import { advkit, expectUsageError } from './run.js';

describe('advkit defend', () => {
  it('applies the chain to an image folder, keeping its tree, and writes x.npy', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-defend-'));
    const input = path.join(dir, 'in');
    for (const cls of ['a', 'b']) {
      await fsp.mkdir(path.join(input, cls), { recursive: true });
      const px = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256));
      await sharp(px, { raw: { width: 8, height: 8, channels: 1 } }).png().toFile(path.join(input, cls, 'x.png'));
    }
    const out = path.join(dir, 'out');
    const r = advkit(['defend', '--input', input, '--defense', 'bit-depth:1', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).examples).toBe(2);
    expect((await fsp.readdir(out)).sort()).toEqual(['a', 'b', 'x.npy', 'y.npy']);
    const x = parseNpy(await fsp.readFile(path.join(out, 'x.npy')), 'x.npy');
    expect(x.shape).toEqual([2, 8, 8, 1]);
    expect(Array.from(x.data).every((v) => v === 0 || v === 1)).toBe(true);
    const { data } = await sharp(path.join(out, 'b', 'x.png')).raw().toBuffer({ resolveWithObject: true });
    expect([...new Set(data)].sort((p, q) => p - q)).toEqual([0, 255]);
    expectUsageError(['defend', '--input', input, '--defense', 'bit-depth:1', '--out', out], /is not empty; choose another directory or pass --force/);
    expectUsageError(['defend', '--input', input, '--defense', 'median:2', '--out', path.join(dir, 'o2')], /k must be odd/);
    expectUsageError(['defend', '--input', path.join(dir, 'nope'), '--defense', 'jpeg:50', '--out', path.join(dir, 'o3')], /does not exist/);
  });
});
