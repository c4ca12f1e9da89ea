import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cliReference, COMMANDS } from '../../src/cli/commands.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('the CLI reference', () => {
  it('docs/cli.md is what the commands say (regenerate with node scripts/cli_docs.mjs)', async () => {
    expect(readFileSync(path.join(root, 'docs/cli.md'), 'utf8')).toBe(await cliReference());
  });

  it('README.md names every command and links the complete reference', () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    for (const name of Object.keys(COMMANDS)) expect(readme, name).toContain(`advkit ${name}`);
    expect(readme).toContain('docs/cli.md');
    expect(readme.split('\n').length).toBeLessThan(300);
  });
});
