// Writes docs/cli.md from the built commands (run `npm run build` first): the complete CLI reference.
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { cliReference } = await import(path.join(root, 'dist/src/cli/commands.js'));
mkdirSync(path.join(root, 'docs'), { recursive: true });
writeFileSync(path.join(root, 'docs/cli.md'), await cliReference());
console.log('wrote docs/cli.md');
