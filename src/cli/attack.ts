/**
 * `advkit attack`: turns a model and a data set into an adversarial example set (PNG/NPY +
 * manifest; the format and its resume are attacks/example_set.ts). Running the same command
 * again after an interruption resumes it; `--shard i/N` writes one block of the set, which
 * `advkit merge` joins with the others. A directory holding a different run is refused unless
 * --force.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { GRADIENT_ATTACKS } from '../attacks/registry.js';
import { writeExampleSet, type ExampleSetSummary } from '../attacks/example_set.js';
import { parseDataSpec, size, take } from '../data/index.js';
import { loadDataFor, loadModel, withModelOptions, withResizeOption } from './model_options.js';
import { AdvkitError } from '../util/errors.js';
import { progressBar } from '../util/progress.js';
import { resolveShard, shardName, shardRange } from '../util/shard.js';
import { attackOptions, checkCompatible, flagTakers, formatOption, targetOption, type AttackCliOptions } from './attack_options.js';
import { action, checkedModelDigest, floatOption, intOption, log, printJson, startBackend, startPool, withCommonOptions, withShardOptions, withWorkersOption } from './common.js';

export function attackCommand(): Command {
  return withResizeOption(withModelOptions(withShardOptions(withWorkersOption(withCommonOptions(new Command('attack'))
    .requiredOption('--model <dir>', 'model directory (model.json + weights)')
    .requiredOption('--data <spec>', 'data: mnist[:test], fashion-mnist[:test], idx:..., npy:..., folder:DIR')
    .requiredOption('--out <dir>', 'output directory for the example set')
    .addOption(new Option('--attack <name>', 'attack').choices([...GRADIENT_ATTACKS]).default('pgd'))
    .requiredOption('--eps <eps>', 'perturbation budget in pixel units ([0,1] images)', floatOption(0))
    .addOption(new Option('--norm <norm>', 'threat model').choices(['linf', 'l2']).default('linf'))
    .option('--steps <n>', `gradient steps ${flagTakers('--steps')}`, intOption(1, 100_000))
    .option('--rel-step-size <f>', `step size as a fraction of eps ${flagTakers('--rel-step-size')}`, floatOption(0, { exclusive: true }))
    .option('--step-size <a>', `absolute step size in pixel units ${flagTakers('--step-size')}`, floatOption(0, { exclusive: true }))
    .option('--restarts <n>', `restarts ${flagTakers('--restarts')}`, intOption(1, 1000))
    .option('--targeted <mode>', `targeted attack: random, least-likely or a class index ${flagTakers('--targeted')}`, targetOption)
    .addOption(new Option('--loss <loss>', `objective, default ce ${flagTakers('--loss')}`).choices(['ce', 'margin', 'dlr']))
    .option('--momentum <mu>', `momentum decay ${flagTakers('--momentum')}`, floatOption(0))
    .option('--early-stop', `samples already fooled stop moving ${flagTakers('--early-stop')}`)
    .option('--seed <n>', 'seed for random starts and targets', intOption(0, 2 ** 31 - 1), 0)
    .option('--limit <n>', 'attack only the first n examples', intOption(1))
    .option('--batch-size <n>', 'batch size', intOption(1, 65_536), 128)
    .option('--format <list>', 'outputs besides the manifest: png, npy or png,npy', formatOption, ['png'] as Array<'png' | 'npy'>)
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')
    .option('--force', 'overwrite an output directory holding another run')
    .addHelpText('after', '\nRunning the same command again after an interruption resumes it; the final files are the same as an uninterrupted run.')))))
    .action(action(async (o: AttackCliOptions) => {
      checkCompatible(o);
      parseDataSpec(o.data);
      const shard = resolveShard(o.shard, o.shardCount);
      const t0 = performance.now();
      const status = await startBackend(o.backend);
      const digest = await checkedModelDigest(o.model, o.expectModelSha256);
      const { classifier: model, metadata } = await loadModel(o);
      let ds = await loadDataFor(o.data, model, o.resize, { dataDir: o.dataDir, split: 'test', classNames: metadata?.classNames });
      if (o.limit !== undefined) ds = take(ds, o.limit);
      if (typeof o.targeted === 'number' && o.targeted >= model.numClasses) {
        throw new AdvkitError('E_USAGE', `Error in --targeted: class ${o.targeted} does not exist; the model has classes 0..${model.numClasses - 1}.`, 2);
      }
      const { start, end } = shardRange(size(ds), shard);
      if (shard) log(`advkit: shard ${shardName(shard)}: examples ${start}..${end - 1} of ${size(ds)}`);
      const bar = progressBar('attack [{bar}] {value}/{total} | success {success} | ETA {eta_formatted}');
      bar.start(end - start, { success: '-' });
      const pool = await startPool(model, o.workers, end - start, o.batchSize, status.name);
      let written;
      try {
        written = await writeExampleSet(model, ds, { name: o.attack, options: attackOptions(o) as never }, {
          out: o.out, flag: '--out', format: o.format, batchSize: o.batchSize, target: o.targeted, shard, modelDigest: digest, force: o.force, pool,
          onStart: (from) => { if (from > 0) log(`advkit: resuming at example ${start + from} of ${size(ds)}`); },
          onProgress: (done, _total, fooled) => bar.update(done, { success: done > 0 ? `${((100 * fooled) / done).toFixed(1)}%` : '-' }),
        });
      } finally {
        bar.stop();
        await pool?.close();
      }
      if (written.alreadyComplete) log(`advkit: ${o.out} already holds this finished run; nothing to do`);
      report(written.summary, o, written.alreadyComplete ? 0 : (performance.now() - t0) / 1000, status.name);
    }));
}

function report(summary: ExampleSetSummary, o: AttackCliOptions, seconds: number, backend: string): void {
  if (o.json) return printJson({ ...summary, seconds, backend, out: path.resolve(o.out) });
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `${summary.attack} (${summary.norm}, eps ${summary.eps}${summary.targeted !== null ? `, targeted ${summary.targeted}` : ''}) on ${summary.examples} examples:`,
    `  clean accuracy        ${pct(summary.cleanAccuracy)}`,
    `  robust accuracy       ${pct(summary.robustAccuracy)}`,
    `  attack success        ${pct(summary.successRate)} (${pct(summary.successRateQuantized)} after 8-bit rounding)`,
    `  mean L∞ / L2 (fooled) ${summary.meanLinf?.toFixed(4) ?? '-'} / ${summary.meanL2?.toFixed(4) ?? '-'}`,
    `  time                  ${seconds.toFixed(1)} s (${backend})`,
    `  written to            ${path.resolve(o.out)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
