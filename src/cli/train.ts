/**
 * `advkit train`: natural training of an architecture on a data set, with a progress bar,
 * validation accuracy each epoch, per-epoch checkpoints (the same command resumes an
 * interrupted run) and a saved model directory with metadata.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError as CommanderArgError, Option } from 'commander';
import { loadDataset, parseDataSpec, size, split, take, type Dataset } from '../data/index.js';
import { ARCHITECTURES, buildArchitecture } from '../models/architectures.js';
import { MODEL_JSON, saveLayersModel, type ModelMetadata } from '../models/io.js';
import { accuracy, clearCheckpoints, TRAIN_DEFAULTS, trainClassifier } from '../defenses/train.js';
import { defaultWorkers } from '../backend/pool.js';
import { AdvkitError, InvalidArgumentError } from '../util/errors.js';
import { exists } from '../util/fs.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { action, floatOption, intOption, log, printJson, startBackend, startTrainPool, trainingCallbacks, withCommonOptions } from './common.js';

interface TrainCliOptions {
  arch: string;
  data: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  out: string;
  valSplit: number;
  schedule: 'cosine' | 'constant' | 'cyclic';
  shift: number;
  adv?: 'fgsm-rs' | 'pgd' | 'trades';
  beta?: number;
  noise?: number;
  eps?: number;
  advSteps?: number;
  rampEpochs?: number;
  limit?: number;
  dataDir?: string;
  force?: boolean;
  shards?: number;
  workers?: number;
  backend?: string;
  json?: boolean;
}

/** Training data and held-out data: the source's own test split where it has one. */
async function trainAndHeldOut(spec: string, o: TrainCliOptions): Promise<[Dataset, Dataset]> {
  const builtIn = /^(mnist|fashion-mnist)$/.test(spec.trim());
  if (builtIn) {
    const train = await loadDataset(`${spec}:train`, { dataDir: o.dataDir });
    const test = await loadDataset(`${spec}:test`, { dataDir: o.dataDir });
    return [train, test];
  }
  const all = await loadDataset(spec, { dataDir: o.dataDir, split: 'train' });
  return split(all, o.valSplit, o.seed);
}

function scheduleOption(value: string): 'cosine' | 'constant' | 'cyclic' {
  if (value !== 'cosine' && value !== 'constant' && value !== 'cyclic') throw new CommanderArgError(`must be cosine, cyclic or constant, got ${JSON.stringify(value)}.`);
  return value;
}

export function trainCommand(): Command {
  return withCommonOptions(new Command('train'))
    .requiredOption('--arch <name>', `architecture: ${ARCHITECTURES.join(', ')}`)
    .requiredOption('--data <spec>', 'training data: mnist, fashion-mnist, idx:IMAGES,LABELS, npy:X,Y or folder:DIR')
    .requiredOption('--out <dir>', 'output model directory')
    .option('--epochs <n>', 'epochs', intOption(1, 10_000), 3)
    .option('--batch-size <n>', 'batch size', intOption(1, 65_536), TRAIN_DEFAULTS.batchSize)
    .option('--lr <rate>', 'Adam learning rate', floatOption(0, { exclusive: true, max: 10 }), TRAIN_DEFAULTS.learningRate)
    .option('--seed <n>', 'seed for weights and batch order', intOption(0, 2 ** 31 - 1), TRAIN_DEFAULTS.seed)
    .option('--schedule <kind>', 'learning-rate schedule: cosine | cyclic | constant (default cosine; cyclic with --adv fgsm-rs)', scheduleOption)
    .addOption(new Option('--adv <method>', 'adversarial training: fgsm-rs (fast FGSM, Wong et al. 2020), pgd (Madry et al. 2018) or trades (Zhang et al. 2019)').choices(['fgsm-rs', 'pgd', 'trades']))
    .option('--beta <b>', 'weight of the KL term (--adv trades)', floatOption(0), undefined)
    .option('--eps <eps>', 'L∞ radius of adversarial training (with --adv)', floatOption(0, { exclusive: true, max: 1 }))
    .option('--adv-steps <n>', 'inner attack steps per batch (--adv pgd, trades)', intOption(1, 1000))
    .option('--ramp-epochs <n>', 'ramp eps up linearly over this many epochs', floatOption(0))
    .option('--noise <sigma>', 'Gaussian-noise augmentation, for randomized smoothing (advkit certify)', floatOption(0, { exclusive: true }))
    .option('--shift <px>', 'random-translation augmentation, in pixels (0 = off)', intOption(0, 64), TRAIN_DEFAULTS.shift)
    .option('--val-split <f>', 'held-out fraction for sources without a test split', floatOption(0, { max: 0.9 }), 0.1)
    .option('--limit <n>', 'use only the first n training examples', intOption(1))
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')
    .option('--shards <n>', `each batch's gradient is computed as this many parts, in parallel on the workers (part of the run: it changes float rounding; with batch norm, each part normalises by its own statistics) (default: ${TRAIN_DEFAULTS.shards}, 1 for models with batch norm)`, intOption(1, 64))
    .option('--workers <n>', 'worker threads for the shards (default: one per core, at most --shards); the weights do not depend on it', intOption(1, 256))
    .option('--force', 'overwrite an output directory holding another run')
    .addHelpText('after', '\nRe-running the same command after an interruption resumes from the last finished epoch.')
    .action(action(async (o: TrainCliOptions) => {
      if (!ARCHITECTURES.includes(o.arch)) {
        throw new InvalidArgumentError(`Error in --arch: unknown architecture ${JSON.stringify(o.arch)}; use one of ${ARCHITECTURES.join(', ')}.`);
      }
      parseDataSpec(o.data);
      if (o.adv && o.eps === undefined) throw new InvalidArgumentError('Error in --eps: --adv needs the training radius, e.g. --adv pgd --eps 0.3.');
      if (!o.adv && (o.eps !== undefined || o.advSteps !== undefined || o.rampEpochs !== undefined || o.beta !== undefined)) throw new InvalidArgumentError('Error in --eps: --eps, --adv-steps, --ramp-epochs and --beta go with --adv fgsm-rs|pgd|trades.');
      const schedule = o.schedule ?? (o.adv === 'fgsm-rs' ? 'cyclic' : TRAIN_DEFAULTS.schedule);
      const adversarial = o.adv ? { method: o.adv, eps: o.eps!, steps: o.advSteps, rampEpochs: o.rampEpochs, beta: o.beta } : undefined;
      const status = await startBackend(o.backend);
      let [train, heldOut] = await trainAndHeldOut(o.data, o);
      if (o.limit !== undefined) train = take(train, o.limit);
      const config = { arch: o.arch, data: o.data, limit: o.limit ?? null, valSplit: o.valSplit };
      const out = path.resolve(o.out);
      const checkpoints = path.join(out, '.checkpoints');
      if (o.force) {
        await clearCheckpoints(checkpoints);
        await fsp.rm(path.join(out, MODEL_JSON), { force: true });
      } else if (await exists(path.join(out, MODEL_JSON))) {
        throw new AdvkitError('E_OUTPUT_EXISTS', `Error in --out: ${o.out} already holds a trained model; choose another directory or pass --force to overwrite it.`, 2);
      }
      const model = buildArchitecture(o.arch, { inputShape: train.shape, numClasses: train.classNames.length, seed: o.seed });
      const shards = o.shards ?? (model.nonTrainableWeights.length > 0 ? 1 : TRAIN_DEFAULTS.shards);
      const nBatches = Math.ceil(size(train) / o.batchSize);
      log(`advkit: training ${o.arch} on ${train.name} (${size(train)} images, held out: ${heldOut.name}, ${size(heldOut)}) on the ${status.name === 'onnxruntime' ? 'wasm backend (onnxruntime runs inference and input gradients, not weight gradients)' : `${status.name} backend`}`);
      const t0 = performance.now();
      const pool = await startTrainPool(model, { ...o, shards }, status.name, train.shape, train.classNames.length);
      let result: Awaited<ReturnType<typeof trainClassifier>>;
      try {
        result = await trainClassifier(model, train, {
          epochs: o.epochs, batchSize: o.batchSize, learningRate: o.lr, seed: o.seed, schedule, shift: o.shift, noise: o.noise, adversarial, validation: heldOut,
          checkpointDir: checkpoints, config, shards, pool, ...trainingCallbacks(nBatches, o.epochs, o.eps),
        });
      } finally {
        await pool?.close();
      }
      if (result.resumedFrom > 0) log(`advkit: resumed after epoch ${result.resumedFrom} from ${checkpoints}`);
      if (result.stoppedEarly) log(`advkit: PGD accuracy collapsed after epoch ${result.stoppedEarly} (catastrophic overfitting); kept the best epoch's weights and stopped`);
      const last = result.history[result.history.length - 1];
      const heldOutAccuracy = last?.valAccuracy ?? (await accuracy((x) => model.apply(x, { training: false }) as never, heldOut));
      const seconds = (performance.now() - t0) / 1000;
      const metadata: ModelMetadata = {
        advkitVersion: ADVKIT_VERSION,
        architecture: o.arch,
        data: o.data,
        inputShape: [...train.shape],
        numClasses: train.classNames.length,
        classNames: [...train.classNames],
        bounds: [0, 1],
        training: {
          kind: adversarial ? 'adversarial' : o.noise ? 'gaussian-noise' : 'natural', ...(o.noise ? { noise: o.noise } : {}), ...(adversarial ? { adversarial, stoppedEarly: result.stoppedEarly ?? null } : {}),
          epochs: o.epochs, batchSize: o.batchSize, learningRate: o.lr, schedule, shift: o.shift, shards, seed: o.seed, optimizer: 'adam',
          trainExamples: size(train), heldOut: heldOut.name, heldOutExamples: size(heldOut), heldOutAccuracy,
          history: result.history, backend: status.name, seconds,
        },
      };
      await saveLayersModel(result.model, out, metadata);
      await clearCheckpoints(checkpoints);
      const summary = { model: out, architecture: o.arch, data: o.data, epochs: o.epochs, heldOutAccuracy, trainAccuracy: last?.accuracy ?? null, seconds, backend: status.name, resumedFrom: result.resumedFrom, heldOutRobustAccuracy: last?.valRobustAccuracy ?? null, stoppedEarly: result.stoppedEarly ?? null };
      if (o.json) printJson(summary);
      else process.stdout.write(`trained ${o.arch} on ${o.data}: held-out accuracy ${(100 * heldOutAccuracy).toFixed(2)}% after ${o.epochs} epochs (${seconds.toFixed(1)} s, ${status.name}); saved to ${out}\n`);
      model.dispose();
    }));
}
