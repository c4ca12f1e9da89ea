/**
 * `advkit attack`: turns a model and a data set into an adversarial example set.
 *
 * Writes to --out: `png/NNNNN.png` (lossless 8-bit), `manifest.jsonl` (one line per example),
 * with `--format npy` also `x_adv.npy`, `x.npy`, `y.npy`, and `summary.json`. Work is kept per
 * batch under `.state/` and the final files are assembled from it, so an interrupted run started
 * again with the same command continues where it stopped and ends with the same bytes as an
 * uninterrupted one. A directory holding a different run is refused unless --force.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { attackDataset, type AttackResult, type GradientAttackOptions } from '../attacks/index.js';
import { ATTACKS, GOAL_ATTACKS, GRADIENT_ATTACKS } from '../attacks/registry.js';
import type { TargetMode } from '../attacks/dataset.js';
import { checkShapes, loadDataset, parseDataSpec, size, take, type Dataset } from '../data/index.js';
import { encodeNpy, npyHeader } from '../data/npy.js';
import { loadClassifier } from '../models/io.js';
import type { Classifier } from '../models/classifier.js';
import { AdvkitError } from '../util/errors.js';
import { exists, writeFileAtomic, writeFileAtomicStreamed } from '../util/fs.js';
import { writePng } from '../util/png.js';
import { progressBar } from '../util/progress.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { action, floatOption, intOption, log, printJson, startBackend, startPool, withCommonOptions, withWorkersOption } from './common.js';

type AttackName = (typeof GRADIENT_ATTACKS)[number];

export interface AttackCliOptions {
  model: string;
  data: string;
  attack: AttackName;
  eps: number;
  norm: 'linf' | 'l2';
  steps?: number;
  relStepSize?: number;
  stepSize?: number;
  restarts?: number;
  targeted?: TargetMode;
  loss: 'ce' | 'margin' | 'dlr';
  momentum?: number;
  earlyStop?: boolean;
  seed: number;
  limit?: number;
  batchSize: number;
  out: string;
  format: Array<'png' | 'npy'>;
  dataDir?: string;
  force?: boolean;
  workers?: number;
  backend?: string;
  json?: boolean;
}

export interface ManifestLine {
  index: number;
  id: number;
  file?: string;
  label: number;
  target?: number;
  cleanPrediction: number;
  adversarialPrediction: number;
  success: boolean;
  /** Whether the example still meets the goal after rounding to 8-bit pixels (as stored in PNG). */
  successQuantized: boolean;
  linf: number;
  l2: number;
}

function targetOption(value: string): TargetMode {
  if (value === 'random' || value === 'least-likely') return value;
  const n = Number(value);
  if (value.trim() !== '' && Number.isInteger(n) && n >= 0) return n;
  throw new CommanderArgError(`must be random, least-likely or a class index, got ${JSON.stringify(value)}.`);
}

function formatOption(value: string): Array<'png' | 'npy'> {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = parts.find((p) => p !== 'png' && p !== 'npy');
  if (bad !== undefined || parts.length === 0) throw new CommanderArgError(`must be a comma list of png and npy, got ${JSON.stringify(value)}.`);
  return [...new Set(parts)] as Array<'png' | 'npy'>;
}

/** The attack's options from the CLI's, with each attack's own defaults where a flag is absent. */
export function attackOptions(o: Pick<AttackCliOptions, 'eps' | 'norm' | 'steps' | 'relStepSize' | 'stepSize' | 'restarts' | 'loss' | 'momentum' | 'earlyStop' | 'seed'>): GradientAttackOptions {
  const opts: GradientAttackOptions = { eps: o.eps, norm: o.norm, loss: o.loss, seed: o.seed };
  if (o.steps !== undefined) opts.steps = o.steps;
  if (o.relStepSize !== undefined) opts.relStepSize = o.relStepSize;
  if (o.stepSize !== undefined) opts.absStepSize = o.stepSize;
  if (o.restarts !== undefined) opts.restarts = o.restarts;
  if (o.momentum !== undefined) opts.momentum = o.momentum;
  if (o.earlyStop) opts.earlyStop = true;
  return opts;
}

function checkCompatible(o: AttackCliOptions): void {
  const bad = (flag: string, why: string) => new AdvkitError('E_USAGE', `Error in ${flag}: ${why}`, 2);
  if (o.attack === 'fgsm' && (o.steps !== undefined || o.relStepSize !== undefined || o.stepSize !== undefined)) throw bad('--steps', 'fgsm takes one full step of size eps; drop --steps/--rel-step-size/--step-size or use bim/pgd.');
  const own = o.attack.startsWith('apgd') || o.attack === 'fab-t';
  if (o.restarts !== undefined && o.attack !== 'pgd' && !own) throw bad('--restarts', `only pgd, apgd-* and fab-t have restarts, not ${o.attack}.`);
  if (own && (o.relStepSize !== undefined || o.stepSize !== undefined)) throw bad('--step-size', `${o.attack} sets its own step sizes; drop --rel-step-size/--step-size.`);
  if (o.targeted !== undefined && !GOAL_ATTACKS.includes(o.attack)) throw bad('--targeted', `${o.attack} picks its own target classes; use one of ${GOAL_ATTACKS.join(', ')} for a targeted attack.`);
  if (o.momentum !== undefined && o.attack !== 'mifgsm') throw bad('--momentum', `only mifgsm uses momentum, not ${o.attack}.`);
  if (o.relStepSize !== undefined && o.stepSize !== undefined) throw bad('--step-size', 'give either --rel-step-size or --step-size, not both.');
}

/** Per-batch record kept under .state until the run is assembled. */
interface BatchState {
  lines: ManifestLine[];
}

async function processBatch(model: Classifier, ds: Dataset, o: AttackCliOptions, b: { start: number; end: number; x: tf.Tensor4D; labels: Int32Array; targets?: Int32Array; cleanPredictions: Int32Array; result: AttackResult }, out: string): Promise<{ state: BatchState; xAdv: Float32Array; x: Float32Array }> {
  const r = b.result;
  const isTargeted = b.targets !== undefined;
  const quantized = tf.tidy(() => {
    const q = tf.div(tf.round(tf.mul(r.adversarial, 255)), 255) as tf.Tensor4D;
    return tf.argMax(model.logits(q), 1);
  });
  const [qPred, xAdv, x] = await Promise.all([quantized.data(), r.adversarial.data() as Promise<Float32Array>, b.x.data() as Promise<Float32Array>]);
  quantized.dispose();
  const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const lines: ManifestLine[] = [];
  for (let k = 0; k < b.end - b.start; k++) {
    const index = b.start + k;
    const line: ManifestLine = {
      index,
      id: ds.ids[index]!,
      label: b.labels[k]!,
      ...(isTargeted ? { target: b.targets![k]! } : {}),
      cleanPrediction: b.cleanPredictions[k]!,
      adversarialPrediction: r.predictions[k]!,
      success: r.success[k] === 1,
      successQuantized: isTargeted ? qPred[k] === b.targets![k] : qPred[k] !== b.labels[k],
      linf: r.norms.linf[k]!,
      l2: r.norms.l2[k]!,
    };
    if (o.format.includes('png')) {
      line.file = `png/${String(index).padStart(5, '0')}.png`;
      await writePng(path.join(out, line.file), xAdv.subarray(k * per, (k + 1) * per), ds.shape);
    }
    lines.push(line);
  }
  return { state: { lines }, xAdv: Float32Array.from(xAdv), x: Float32Array.from(x) };
}

export interface AttackSummary {
  examples: number;
  attack: AttackName;
  eps: number;
  norm: string;
  targeted: TargetMode | null;
  cleanAccuracy: number;
  robustAccuracy: number;
  successRate: number;
  successRateQuantized: number;
  meanLinf: number | null;
  meanL2: number | null;
}

export function summarize(lines: ManifestLine[], o: Pick<AttackCliOptions, 'attack' | 'eps' | 'norm' | 'targeted'>): AttackSummary {
  const n = lines.length;
  const ok = lines.filter((l) => l.success);
  const mean = (vals: number[]) => (vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null);
  return {
    examples: n,
    attack: o.attack,
    eps: o.eps,
    norm: o.norm,
    targeted: o.targeted ?? null,
    cleanAccuracy: n ? lines.filter((l) => l.cleanPrediction === l.label).length / n : 0,
    robustAccuracy: n ? lines.filter((l) => l.adversarialPrediction === l.label).length / n : 0,
    successRate: n ? ok.length / n : 0,
    successRateQuantized: n ? lines.filter((l) => l.successQuantized).length / n : 0,
    meanLinf: mean(ok.map((l) => l.linf)),
    meanL2: mean(ok.map((l) => l.l2)),
  };
}

export function attackCommand(): Command {
  return withWorkersOption(withCommonOptions(new Command('attack').description('attack a model on a data set and write an adversarial example set (PNG/NPY + manifest)'))
    .requiredOption('--model <dir>', 'model directory (model.json + weights)')
    .requiredOption('--data <spec>', 'data: mnist[:test], fashion-mnist[:test], idx:..., npy:..., folder:DIR')
    .requiredOption('--out <dir>', 'output directory for the example set')
    .addOption(new Option('--attack <name>', 'attack').choices([...GRADIENT_ATTACKS]).default('pgd'))
    .requiredOption('--eps <eps>', 'perturbation budget in pixel units ([0,1] images)', floatOption(0))
    .addOption(new Option('--norm <norm>', 'threat model').choices(['linf', 'l2']).default('linf'))
    .option('--steps <n>', 'gradient steps (bim, pgd, mifgsm, apgd-*, fab-t)', intOption(1, 100_000))
    .option('--rel-step-size <f>', 'step size as a fraction of eps', floatOption(0, { exclusive: true }))
    .option('--step-size <a>', 'absolute step size in pixel units', floatOption(0, { exclusive: true }))
    .option('--restarts <n>', 'restarts (pgd, apgd-*, fab-t)', intOption(1, 1000))
    .option('--targeted <mode>', 'targeted attack: random, least-likely or a class index', targetOption)
    .addOption(new Option('--loss <loss>', 'objective').choices(['ce', 'margin', 'dlr']).default('ce'))
    .option('--momentum <mu>', 'momentum decay (mifgsm)', floatOption(0))
    .option('--early-stop', 'samples already fooled stop moving')
    .option('--seed <n>', 'seed for random starts and targets', intOption(0, 2 ** 31 - 1), 0)
    .option('--limit <n>', 'attack only the first n examples', intOption(1))
    .option('--batch-size <n>', 'batch size', intOption(1, 65_536), 128)
    .option('--format <list>', 'outputs besides the manifest: png, npy or png,npy', formatOption, ['png'] as Array<'png' | 'npy'>)
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')
    .option('--force', 'overwrite an output directory holding another run')
    .addHelpText('after', '\nRunning the same command again after an interruption resumes it; the final files are the same as an uninterrupted run.'))
    .action(action(async (o: AttackCliOptions) => {
      checkCompatible(o);
      parseDataSpec(o.data);
      const t0 = performance.now();
      const status = await startBackend(o.backend);
      const { classifier: model } = await loadClassifier(o.model);
      for (const w of model.warnings) log(`advkit: warning: ${w}`);
      let ds = await loadDataset(o.data, { dataDir: o.dataDir, split: 'test' });
      if (o.limit !== undefined) ds = take(ds, o.limit);
      checkShapes('--model/--data', model.inputShape, ds);
      if (typeof o.targeted === 'number' && o.targeted >= model.numClasses) {
        throw new AdvkitError('E_USAGE', `Error in --targeted: class ${o.targeted} does not exist; the model has classes 0..${model.numClasses - 1}.`, 2);
      }
      const out = path.resolve(o.out);
      const stateDir = path.join(out, '.state');
      const config = { advkit: ADVKIT_VERSION, model: path.resolve(o.model), data: o.data, limit: o.limit ?? null, attack: o.attack, options: attackOptions(o), targeted: o.targeted ?? null, batchSize: o.batchSize, format: o.format, examples: size(ds) };
      const runFile = path.join(out, 'run.json');
      if (await exists(runFile)) {
        const prev = JSON.parse(await fsp.readFile(runFile, 'utf8')) as { config: unknown; complete?: boolean };
        if (JSON.stringify(prev.config) !== JSON.stringify(config)) {
          if (!o.force) throw new AdvkitError('E_OUTPUT_EXISTS', `Error in --out: ${o.out} holds a different run (${path.relative(process.cwd(), runFile) || runFile}); choose another directory or pass --force to replace it.`, 2);
          await fsp.rm(out, { recursive: true, force: true });
        } else if (prev.complete && !o.force) {
          const summary = JSON.parse(await fsp.readFile(path.join(out, 'summary.json'), 'utf8')) as AttackSummary;
          log(`advkit: ${o.out} already holds this finished run; nothing to do`);
          return report(summary, o, 0, status.name);
        } else if (o.force) {
          await fsp.rm(out, { recursive: true, force: true });
        }
      } else if (await exists(out) && (await fsp.readdir(out)).length > 0) {
        if (!o.force) throw new AdvkitError('E_OUTPUT_EXISTS', `Error in --out: ${o.out} is not empty and holds no advkit run; choose another directory or pass --force to replace it.`, 2);
        await fsp.rm(out, { recursive: true, force: true });
      }
      await fsp.mkdir(stateDir, { recursive: true });
      await writeFileAtomic(runFile, `${JSON.stringify({ config, complete: false }, null, 2)}\n`);

      // Resume after the last batch whose state file exists.
      const done = new Set((await fsp.readdir(stateDir)).filter((f) => f.endsWith('.json')).map((f) => Number(f.slice(6, -5))));
      let from = 0;
      while (done.has(from)) from += o.batchSize;
      if (from > 0) log(`advkit: resuming at example ${from} of ${size(ds)}`);
      const total = size(ds);
      const bar = progressBar('attack [{bar}] {value}/{total} | success {success} | ETA {eta_formatted}');
      bar.start(total, { success: '-' });
      bar.update(Math.min(from, total), { success: '-' });
      let fooled = 0;
      let seen = 0;
      const attack = ATTACKS[o.attack] as unknown as Parameters<typeof attackDataset>[0];
      const pool = await startPool(o.model, o.workers, total - from, o.batchSize, status.name);
      try {
        for await (const b of attackDataset(attack, model, ds, attackOptions(o) as never, { batchSize: o.batchSize, from, target: o.targeted, pool })) {
          const { state, xAdv, x } = await processBatch(model, ds, o, b, out);
          tf.dispose([b.x, b.result.adversarial]);
          if (o.format.includes('npy')) {
            await writeFileAtomic(path.join(stateDir, `batch-${b.start}.xadv`), new Uint8Array(xAdv.buffer));
            await writeFileAtomic(path.join(stateDir, `batch-${b.start}.x`), new Uint8Array(x.buffer));
          }
          // The JSON is written last: its presence marks the batch as done.
          await writeFileAtomic(path.join(stateDir, `batch-${b.start}.json`), JSON.stringify(state));
          fooled += state.lines.filter((l) => l.success).length;
          seen += state.lines.length;
          bar.update(b.end, { success: `${((100 * fooled) / seen).toFixed(1)}%` });
        }
      } finally {
        bar.stop();
        await pool?.close();
      }

      // Assemble the final files from the per-batch state, in order; the NPY files are streamed
      // batch by batch, so a large set never sits in memory whole.
      const lines: ManifestLine[] = [];
      const starts = Array.from({ length: Math.ceil(total / o.batchSize) }, (_, i) => i * o.batchSize);
      for (const start of starts) {
        const state = JSON.parse(await fsp.readFile(path.join(stateDir, `batch-${start}.json`), 'utf8')) as BatchState;
        lines.push(...state.lines);
      }
      await writeFileAtomic(path.join(out, 'manifest.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      if (o.format.includes('npy')) {
        const shape = [total, ...ds.shape];
        const streamed = async function* (ext: string): AsyncGenerator<Uint8Array> {
          yield npyHeader('<f4', shape);
          for (const start of starts) yield await fsp.readFile(path.join(stateDir, `batch-${start}.${ext}`));
        };
        await writeFileAtomicStreamed(path.join(out, 'x_adv.npy'), streamed('xadv'));
        await writeFileAtomicStreamed(path.join(out, 'x.npy'), streamed('x'));
        await writeFileAtomic(path.join(out, 'y.npy'), encodeNpy(Int32Array.from(ds.labels), [total]));
      }
      const summary = summarize(lines, o);
      await writeFileAtomic(path.join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
      await writeFileAtomic(runFile, `${JSON.stringify({ config, complete: true }, null, 2)}\n`);
      await fsp.rm(stateDir, { recursive: true, force: true });
      report(summary, o, (performance.now() - t0) / 1000, status.name);
    }));
}

function report(summary: AttackSummary, o: AttackCliOptions, seconds: number, backend: string): void {
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
