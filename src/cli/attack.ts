/**
 * `advkit attack`: turns a model and a data set into an adversarial example set (PNG/NPY +
 * manifest; the format and its resume are attacks/example_set.ts). Running the same command
 * again after an interruption resumes it; `--shard i/N` writes one block of the set, which
 * `advkit merge` joins with the others. A directory holding a different run is refused unless
 * --force.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { ATTACK_NAMES, ATTACK_REGISTRY } from '../attacks/registry.js';
import { writeExampleSet, type ExampleSetSummary } from '../attacks/example_set.js';
import { parseDataSpec, size, take } from '../data/index.js';
import { checkEpsRange, loadDataFor, loadModel, withModelOptions, withResizeOption } from './model_options.js';
import { AdvkitError } from '../util/errors.js';
import { progressBar } from '../util/progress.js';
import { resolveShard, shardName, shardRange } from '../util/shard.js';
import { attackOptions, checkCompatible, formatOption, withAttackFlags, type AttackCliOptions } from './attack_options.js';
import { action, checkedModelDigest, countingForwardPasses, epsOption, intOption, log, printJson, startBackend, startPool, withCommonOptions, withShardOptions, withWorkersOption } from './common.js';
import { withDefense, withDefenseOptions } from './defense_spec.js';
import { NORM_NAMES } from '../util/norms.js';

export function attackCommand(): Command {
  return withDefenseOptions(withAttackFlags(withResizeOption(withModelOptions(withShardOptions(withWorkersOption(withCommonOptions(new Command('attack'))
    .requiredOption('--model <dir>', 'model: a TensorFlow.js model directory (model.json + weights) or an ONNX file (model.onnx)')
    .requiredOption('--data <spec>', 'data: mnist[:test], fashion-mnist[:test], idx:..., npy:..., folder:DIR')
    .requiredOption('--out <dir>', 'output directory for the example set')
    .addOption(new Option('--attack <name>', 'attack').choices([...ATTACK_NAMES]).default('pgd'))
    .requiredOption('--eps <eps>', 'perturbation budget in pixel units ([0,1] images): a number or a fraction such as 8/255', epsOption)
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORM_NAMES]).default('linf'))
    .option('--allow-large-eps', "allow an eps larger than any perturbation inside the model's bounds (a unit mistake otherwise)")
    .option('--seed <n>', 'seed for random starts and targets', intOption(0, 2 ** 31 - 1), 0)
    .option('--limit <n>', 'attack only the first n examples', intOption(1))
    .option('--batch-size <n>', 'batch size', intOption(1, 65_536), 128)
    .option('--format <list>', 'outputs besides the manifest: png, npy or png,npy', formatOption, ['png'] as Array<'png' | 'npy'>)
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')
    .option('--force', 'overwrite an output directory holding another run')
    .addHelpText('after', '\nRunning the same command again after an interruption resumes it; the final files are the same as an uninterrupted run.'))))), { targeted: true }))
    .action(action(async (o: AttackCliOptions) => {
      checkCompatible(o);
      parseDataSpec(o.data);
      const shard = resolveShard(o.shard, o.shardCount);
      const t0 = performance.now();
      const status = await startBackend(o.backend);
      const digest = await checkedModelDigest(o.model, o.expectModelSha256);
      const { classifier: loaded, metadata } = await loadModel(o);
      const model = withDefense(loaded, o);
      checkEpsRange([o.eps], o.norm, model, o.allowLargeEps);
      let ds = await loadDataFor(o.data, model, o.resize, { dataDir: o.dataDir, split: 'test', classNames: metadata?.classNames });
      if (o.limit !== undefined) ds = take(ds, o.limit);
      if (typeof o.targeted === 'number' && o.targeted >= model.numClasses) {
        throw new AdvkitError('E_USAGE', `Error in --targeted: class ${o.targeted} does not exist; the model has classes 0..${model.numClasses - 1}.`, 2);
      }
      const { start, end } = shardRange(size(ds), shard);
      if (shard) log(`advkit: shard ${shardName(shard)}: examples ${start}..${end - 1} of ${size(ds)}`);
      // The bar counts examples and moves within a batch: each forward pass of the model (in this
      // thread or reported by the workers) is a share of a batch's expected passes.
      const bar = progressBar('attack [{bar}] {value}/{total} examples | success {success} | ETA {eta_formatted}');
      bar.start(end - start, { success: '-' });
      const options = attackOptions(o);
      const passes = expectedPasses(o.attack, options as unknown as Record<string, unknown>);
      let done = 0;
      let calls = 0;
      let success = '-';
      const onPass = (n: number) => {
        calls += n;
        bar.update(Math.min(end - start - 1, done + Math.floor((o.batchSize * calls) / passes)), { success });
      };
      const pool = await startPool(model, o.workers, end - start, o.batchSize, status.name);
      const counted = countingForwardPasses(model, pool, onPass);
      let written;
      try {
        written = await writeExampleSet(counted, ds, { name: o.attack, options: options as never }, {
          out: o.out, flag: '--out', format: o.format, batchSize: o.batchSize, target: o.targeted, shard, modelDigest: digest, force: o.force, pool,
          onStart: (from) => { done = from; if (from > 0) log(`advkit: resuming at example ${start + from} of ${size(ds)}`); },
          onProgress: (d, _total, fooled) => {
            done = d;
            calls = 0;
            success = d > 0 ? `${((100 * fooled) / d).toFixed(1)}%` : '-';
            bar.update(d, { success });
          },
        });
      } finally {
        bar.stop();
        await pool?.close();
      }
      if (written.alreadyComplete) log(`advkit: ${o.out} already holds this finished run; nothing to do`);
      report(written.summary, o, written.alreadyComplete ? 0 : (performance.now() - t0) / 1000, status.name);
    }));
}

/** About how many forward passes one batch of `attack` makes (steps x restarts x targets, or queries), for the progress bar. */
function expectedPasses(attack: string, options: Record<string, unknown>): number {
  const entry = (ATTACK_REGISTRY as Record<string, { defaults: Record<string, unknown> }>)[attack]!;
  const get = (k: string) => Number(options[k] ?? entry.defaults[k] ?? 1) || 1;
  return Math.max(1, attack === 'square' ? get('queries') : get('steps') * get('restarts') * (attack === 'apgd-t' || attack === 'fab-t' ? get('targets') : 1) * get('eot'));
}

function report(summary: ExampleSetSummary, o: AttackCliOptions, seconds: number, backend: string): void {
  if (o.json) return printJson({ ...summary, seconds, backend, out: path.resolve(o.out) });
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `${summary.attack} (${summary.norm}, eps ${summary.eps}${summary.targeted !== null ? `, targeted ${summary.targeted}` : ''}) on ${summary.examples} examples:`,
    `  clean accuracy        ${pct(summary.cleanAccuracy)}`,
    `  robust accuracy       ${pct(summary.robustAccuracy)}`,
    `  attack success        ${pct(summary.successRate)} (${pct(summary.successRateQuantized)} after 8-bit rounding)`,
    `  fooled mean L∞/L2/L1  ${summary.meanLinf?.toFixed(4) ?? '-'} / ${summary.meanL2?.toFixed(4) ?? '-'} / ${summary.meanL1?.toFixed(4) ?? '-'}`,
    `  time                  ${seconds.toFixed(1)} s (${backend})`,
    `  written to            ${path.resolve(o.out)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
