import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import { expect } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(root, 'dist/src/cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `advkit` bin (npm test builds it first). */
export function advkit(args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A bad input gives exit code 2, nothing on stdout, and one line on stderr that names the problem. */
export function expectUsageError(args: string[], pattern: RegExp, env: Record<string, string> = {}): void {
  const r = advkit(args, env);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('advkit: note:') && !l.startsWith('(run with --help'));
  expect(lines.length, r.stderr).toBe(1);
  expect(lines[0]).toMatch(pattern);
}

/** All files under a directory with their bytes, for byte-for-byte comparison. */
export async function snapshot(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(path.relative(root, p), await fsp.readFile(p));
    }
  };
  await walk(root);
  return out;
}

/** A fresh temporary directory holding `model/`, an untrained architecture saved by advkit. */
export async function tempDirWithModel(prefix: string, arch: string, seed: number): Promise<{ dir: string; model: string }> {
  const { useBackend } = await import('../helpers.js');
  const { buildArchitecture } = await import('../../src/models/architectures.js');
  const { saveLayersModel } = await import('../../src/models/io.js');
  await useBackend('wasm');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  const model = path.join(dir, 'model');
  const net = buildArchitecture(arch as never, { seed });
  await saveLayersModel(net, model, { advkitVersion: 'test', architecture: arch });
  net.dispose();
  return { dir, model };
}
