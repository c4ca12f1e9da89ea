/** `advkit bench`: the benchmark suite of bench/ (the same as `npm run bench`). */
import { Command } from 'commander';
import { renderBenchTable, runBench } from '../../bench/suite.js';
import type { BackendName } from '../backend/index.js';
import { existsSync } from 'node:fs';
import { ARCHITECTURES } from '../models/architectures.js';
import { InvalidArgumentError } from '../util/errors.js';
import { action, intOption, log, printJson } from './common.js';

const list = (v: string | undefined) => v?.split(',').map((s) => s.trim()).filter(Boolean);

export function benchCommand(): Command {
  return new Command('bench')
    .option('--backends <list>', 'comma list of onnxruntime, wasm, cpu, tensorflow', 'wasm')
    .option('--models <list>', 'comma list of architectures (mobilenet-v2, resnet-18, mini-xception at their reference shapes)', 'mnist-cnn,madry-cnn')
    .option('--torch <torch_pgd.py>', 'run the PyTorch reference loop for mobilenet-v2 / resnet-18 in the same run (ratios over it)')
    .option('--batches <list>', 'comma list of batch sizes (default 1,32,128,256; cpu 32)')
    .option('--steps <n>', 'gradient steps per measured PGD run', intOption(1, 1000), 10)
    .option('--iterations <n>', 'measured runs per case', intOption(1, 1000), 3)
    .option('--json', 'print the rows as JSON')
    .action(action(async (o: { backends: string; models: string; batches?: string; steps: number; iterations: number; json?: boolean; torch?: string }) => {
      const backends = list(o.backends) as BackendName[];
      const bad = backends.find((b) => !['onnxruntime', 'wasm', 'cpu', 'tensorflow'].includes(b));
      if (bad) throw new InvalidArgumentError(`Error in --backends: unknown backend ${JSON.stringify(bad)}; use onnxruntime, wasm, cpu or tensorflow.`);
      const batches = list(o.batches)?.map(Number);
      if (batches?.some((b) => !Number.isInteger(b) || b < 1 || b > 4096)) throw new InvalidArgumentError(`Error in --batches: ${JSON.stringify(o.batches)} must be a comma list of integers from 1 to 4096.`);
      const models = list(o.models) ?? [];
      const unknown = models.find((m) => !ARCHITECTURES.includes(m));
      if (unknown) throw new InvalidArgumentError(`Error in --models: unknown architecture ${JSON.stringify(unknown)}; use ${ARCHITECTURES.join(', ')}.`);
      if (o.torch !== undefined && !existsSync(o.torch)) throw new InvalidArgumentError(`Error in --torch: ${JSON.stringify(o.torch)} does not exist; give the path of torch_pgd.py (shared/reference/torch_pgd.py).`);
      const rows = await runBench({ backends, models, batches, steps: o.steps, iterations: o.iterations, torch: o.torch, onRow: (r) => log(`bench: ${r.backend} ${r.model} ${r.loop} batch ${r.batch}: ${r.imageStepsPerSecond.toFixed(0)} image-steps/s`) });
      if (o.json) printJson(rows);
      else process.stdout.write(renderBenchTable(rows));
    }));
}
