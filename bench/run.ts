/**
 * `npm run bench`: runs the suite on every backend available here and prints the table
 * (`--json` for JSON). Options: --backends wasm,cpu --models mnist-cnn --batches 128 --steps 10.
 */
import { renderBenchTable, runBench } from './suite.js';
import type { BackendName } from '../src/backend/index.js';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const list = (v: string | undefined) => v?.split(',').map((s) => s.trim()).filter(Boolean);
const rows = await runBench({
  backends: (list(opt('backends')) as BackendName[] | undefined) ?? ['wasm', 'cpu'],
  models: list(opt('models')),
  batches: list(opt('batches'))?.map(Number),
  steps: opt('steps') ? Number(opt('steps')) : undefined,
  onRow: (r) => process.stderr.write(`bench: ${r.backend} ${r.model} ${r.loop} batch ${r.batch}: ${r.imageStepsPerSecond.toFixed(0)} image-steps/s\n`),
});
if (args.includes('--json')) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
else process.stdout.write(renderBenchTable(rows));
