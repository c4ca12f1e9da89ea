import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');
/** The house's layers, lowest first (../shared/DESIGN.md): a file imports only its own layer or lower ones. */
const RANK: Record<string, number> = { util: 0, backend: 1, data: 2, models: 2, attacks: 3, defenses: 4, eval: 5, cli: 6 };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layers', () => {
  it('no source file imports a layer above its own', () => {
    const upward: string[] = [];
    for (const file of files(src)) {
      const layer = path.relative(src, file).split(path.sep)[0]!;
      if (!(layer in RANK)) continue;
      for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const target = path.relative(src, path.resolve(path.dirname(file), m[1]!)).split(path.sep)[0]!;
        if (target in RANK && RANK[target]! > RANK[layer]!) upward.push(`${path.relative(src, file)} imports ${m[1]}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
