import { describe, expect, it } from 'vitest';
import { renderBenchTable, runBench } from '../../bench/suite.js';
import { expectUsageError } from '../cli/run.js';

/** The suite runs end to end (small: mlp, one batch, one step); speed is not asserted here. */
describe('benchmark suite', () => {
  it('measures every loop beside the plain baseline, with training steps on 1 thread and on 2 workers', async () => {
    const rows = await runBench({ backends: ['wasm'], models: ['mlp'], batches: [128], steps: 1, iterations: 1, workerScaling: false });
    const loops = rows.map((r) => r.loop);
    for (const loop of ['plain PGD loop (baseline kernels)', 'advkit pgd', 'advkit trainingStep, natural, this process', 'advkit trainingStep, FGSM-RS, 2 shards on 2 worker threads']) {
      expect(loops).toContain(loop);
    }
    for (const r of rows) {
      expect(r.imageStepsPerSecond).toBeGreaterThan(0);
      expect(Number.isFinite(r.msPerStep)).toBe(true);
      if (r.loop.startsWith('plain PGD loop (baseline')) expect(r.ratio).toBe(1);
    }
    expect(renderBenchTable(rows).split('\n').length).toBe(rows.length + 3);
  });

  it('advkit bench refuses an unknown backend with exit 2', () => {
    expectUsageError(['bench', '--backends', 'gpu'], /--backends/);
  });
});
