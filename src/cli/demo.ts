/**
 * `advkit demo`, the main job on the embedded default backend: trains mnist-cnn (or reuses the
 * cached one), evaluates APGD-CE, APGD-T and FAB-T (the first three attacks of AutoAttack's
 * standard ensemble, with smaller budgets) over an L∞ epsilon sweep on held-out digits with the
 * sanity checks, prints the table and the minimum-norm figure, and writes the HTML report. The
 * report calls it a partial evaluation and names the preset that would complete it.
 */
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { loadMnist, take } from '../data/index.js';
import { evaluateRobustness } from '../eval/evaluate.js';
import { renderTable } from '../eval/render.js';
import { buildArchitecture } from '../models/architectures.js';
import { loadClassifier, METADATA_JSON, saveLayersModel } from '../models/io.js';
import { TRAIN_DEFAULTS, trainClassifier } from '../defenses/train.js';
import { ensureWritableDir, exists } from '../util/fs.js';
import { progressBar } from '../util/progress.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { action, intOption, log, printJson, startBackend, startPool, startTrainPool, trainingCallbacks, withCommonOptions, withWorkersOption } from './common.js';
import { writeReportFiles } from './report_files.js';

export const DEMO = Object.freeze({
  epochs: 3, seed: 0, epsilons: [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], limit: 500,
  attacks: [
    { name: 'apgd-ce' as const, options: { steps: 20 } },
    { name: 'apgd-t' as const, options: { steps: 20, targets: 2 } },
    { name: 'fab-t' as const, options: { steps: 20, targets: 2 } },
  ],
});

function defaultCache(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'advkit');
}

export function demoCommand(): Command {
  return withWorkersOption(withCommonOptions(new Command('demo'))
    .option('--out <dir>', 'where to write the report', 'advkit-demo')
    .option('--cache <dir>', 'where the trained model is kept between runs (default $XDG_CACHE_HOME/advkit or ~/.cache/advkit)')
    .option('--limit <n>', 'held-out digits to evaluate', intOption(1, 2004), DEMO.limit))
    .action(action(async (o: { out: string; cache?: string; limit: number; workers?: number; backend?: string; json?: boolean }) => {
      const t0 = performance.now();
      const status = await startBackend(o.backend);
      const modelDir = path.join(o.cache ?? defaultCache(), `mnist-cnn-seed${DEMO.seed}-e${DEMO.epochs}`);
      await ensureWritableDir(modelDir, '--cache');
      if (!(await exists(path.join(modelDir, 'model.json'))) || !(await exists(path.join(modelDir, METADATA_JSON)))) {
        log(`advkit: training mnist-cnn on mnist:train (${DEMO.epochs} epochs; cached in ${modelDir} for next time)`);
        const net = buildArchitecture('mnist-cnn', { seed: DEMO.seed });
        const train = loadMnist('train');
        const nBatches = Math.ceil(train.labels.length / TRAIN_DEFAULTS.batchSize);
        const trainPool = await startTrainPool(net, { workers: o.workers, shards: TRAIN_DEFAULTS.shards, batchSize: TRAIN_DEFAULTS.batchSize }, status.name, train.shape, 10);
        let result: Awaited<ReturnType<typeof trainClassifier>>;
        try {
          result = await trainClassifier(net, train, {
            epochs: DEMO.epochs, seed: DEMO.seed, validation: loadMnist('test'), checkpointDir: path.join(modelDir, '.checkpoints'), config: { arch: 'mnist-cnn', data: 'mnist' },
            pool: trainPool, ...trainingCallbacks(nBatches, DEMO.epochs),
          });
        } finally {
          await trainPool?.close();
        }
        await saveLayersModel(result.model, modelDir, { advkitVersion: ADVKIT_VERSION, architecture: 'mnist-cnn', data: 'mnist', inputShape: [28, 28, 1], numClasses: 10, bounds: [0, 1], training: { kind: 'natural', epochs: DEMO.epochs, seed: DEMO.seed, history: result.history } });
        net.dispose();
      } else {
        log(`advkit: reusing the trained mnist-cnn in ${modelDir}`);
      }
      const { classifier } = await loadClassifier(modelDir);
      const data = take(loadMnist('test'), o.limit);
      log(`advkit: evaluating ${DEMO.attacks.map((a) => `${a.name.toUpperCase()}-${a.options.steps}`).join(', ')} at L∞ eps ${DEMO.epsilons.join(', ')} on ${data.labels.length} held-out digits (${status.name} backend; advkit eval --preset standard runs the complete ensemble)`);
      const bar = progressBar('eval [{bar}] {value}/{total} {step} | ETA {eta_formatted}');
      bar.start(DEMO.epsilons.length * DEMO.attacks.length, { step: '' });
      const pool = await startPool(modelDir, o.workers, data.labels.length, 128, status.name);
      let evaluation;
      try {
      evaluation = await evaluateRobustness(classifier, data, {
        pool,
        attacks: DEMO.attacks.map((a) => ({ name: a.name, options: { ...a.options } })),
        epsilons: [...DEMO.epsilons], seed: DEMO.seed, checksLimit: 50, squareQueries: 200, keepExamples: 8, modelName: 'mnist-cnn (demo)',
        onProgress: (step, done) => bar.update(done, { step }),
      });
      } finally {
        bar.stop();
        await pool?.close();
      }
      const files = await writeReportFiles(path.resolve(o.out), evaluation, data);
      const seconds = (performance.now() - t0) / 1000;
      if (o.json) return printJson({ report: evaluation.report, files, seconds });
      process.stdout.write(renderTable(evaluation.report));
      process.stdout.write(`\nreport: ${files.find((f) => f.endsWith('.html'))} (${seconds.toFixed(0)} s in all)\n`);
    }));
}
