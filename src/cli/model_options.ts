/**
 * What every command that loads a model shares: which head to attack (--head), the model's own
 * input preprocessing (--normalize, --input-range) and how data of another size reaches it
 * (--resize). Each is also read from advkit.json beside the model (head, normalization,
 * inputRange); a flag overrides it.
 */
import { InvalidArgumentError as CommanderArgError, type Command } from 'commander';
import { checkShapes, loadDataset, parseDataSpec, parseResize, resizeDataset, RESIZE_HELP, type Dataset, type LoadOptions, type ResizeSpec } from '../data/index.js';
import { describePreprocessing, IMAGENET_NORMALIZATION, type Bounds, type Classifier, type Normalization } from '../models/classifier.js';
import { loadClassifier, type ModelMetadata } from '../models/io.js';
import { InvalidArgumentError } from '../util/errors.js';
import { log } from './common.js';
import { diameter, NORM_LABELS, type NormName } from '../util/norms.js';

export interface ModelCliOptions {
  model: string;
  head?: string;
  normalize?: Normalization;
  inputRange?: Bounds;
  resize?: ResizeSpec;
}

const numbers = (value: string): number[] => value.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));

/** `imagenet`, `M,S` (one mean and std for every channel), `m1,m2,m3,s1,s2,s3` or `m1,m2,m3/s1,s2,s3`. */
export function normalizeOption(value: string): Normalization {
  const v = value.trim();
  if (v.toLowerCase() === 'imagenet') return { mean: [...IMAGENET_NORMALIZATION.mean as number[]], std: [...IMAGENET_NORMALIZATION.std as number[]] };
  const halves = v.includes('/') ? v.split('/').map(numbers) : null;
  const all = halves ? halves.flat() : numbers(v);
  const [mean, std] = halves && halves.length === 2 ? [halves[0]!, halves[1]!] : [all.slice(0, all.length / 2), all.slice(all.length / 2)];
  if ((halves && halves.length !== 2) || mean.length === 0 || mean.length !== std.length || !all.every(Number.isFinite)) {
    throw new CommanderArgError(`must be imagenet, MEAN,STD (one value each for every channel) or per-channel means then stds (0.5,0.5,0.5,0.25,0.25,0.25 or 0.5,0.5,0.5/0.25,0.25,0.25), got ${JSON.stringify(value)}.`);
  }
  if (!std.every((s) => s > 0)) throw new CommanderArgError(`the stds must be > 0, got ${JSON.stringify(value)}.`);
  return { mean: mean.length === 1 ? mean[0]! : mean, std: std.length === 1 ? std[0]! : std };
}

/** `lo,hi` with finite lo < hi (e.g. -1,1 or 0,255). */
export function inputRangeOption(value: string): Bounds {
  const v = numbers(value.trim());
  if (v.length !== 2 || !v.every(Number.isFinite) || !(v[0]! < v[1]!)) {
    throw new CommanderArgError(`must be lo,hi with lo < hi, the range the model expects (e.g. -1,1 or 0,255), got ${JSON.stringify(value)}.`);
  }
  return [v[0]!, v[1]!];
}

export function resizeOption(value: string): ResizeSpec {
  try {
    return parseResize(value);
  } catch (err) {
    throw new CommanderArgError((err as Error).message.replace(/^Error in --resize: /, ''));
  }
}

/** Adds --head, --normalize and --input-range (every command that loads a model). */
export function withModelOptions(cmd: Command): Command {
  return cmd
    .option('--head <name>', "the output to attack in a model with several: a signature key, an output node (name or name:slot) or an output layer (default: advkit.json's head, else the only output)")
    .option('--normalize <mean,std>', "the model's input normalization, (x - mean) / std per channel inside the classifier: imagenet, MEAN,STD, or per-channel means then stds (default: advkit.json's normalization, else none)", normalizeOption)
    .option('--input-range <lo,hi>', "the range the model expects its inputs in (e.g. -1,1 or 0,255); pixels in [0, 1] are mapped onto it before --normalize (default: advkit.json's inputRange, else [0, 1])", inputRangeOption);
}

/** Adds --resize (every command that loads data for a model). */
export function withResizeOption(cmd: Command): Command {
  return cmd.option('--resize <mode>', `images of another size than the model's input: ${RESIZE_HELP} (default: fit for image folders, none for arrays)`, resizeOption);
}

/** Loads --model with --head, --normalize and --input-range; logs what advkit does to its inputs and output. */
export async function loadModel(o: ModelCliOptions): Promise<Awaited<ReturnType<typeof loadClassifier>>> {
  const loaded = await loadClassifier(o.model, { head: o.head, normalization: o.normalize, inputRange: o.inputRange });
  const c = loaded.classifier;
  if (c.output?.head) log(`advkit: note: attacking head '${c.output.head}' of ${o.model}`);
  if (c.preprocessing) log(`advkit: note: the model's inputs: ${describePreprocessing(c.bounds, c.preprocessing)}; epsilons stay in pixel units`);
  for (const w of c.warnings) log(`advkit: warning: ${w}`);
  return loaded;
}

/**
 * Loads a data spec for `model`: image folders decoded at the model's input size (fit by
 * default), arrays resized only when --resize asks; one log line says what was done; a shape
 * that still differs is refused.
 */
export async function loadDataFor(spec: string, model: Classifier, resize: ResizeSpec | undefined, options: LoadOptions = {}): Promise<Dataset> {
  const folder = parseDataSpec(spec).kind === 'folder';
  const mode = resize?.mode ?? (folder ? 'fit' : 'none');
  const [H, W, C] = resize?.size ? [resize.size[0], resize.size[1], model.inputShape[2]] : model.inputShape;
  let ds: Dataset;
  if (folder && mode !== 'none') {
    ds = await loadDataset(spec, { ...options, resize: [H, W], fit: mode, channels: C === 1 || C === 3 ? C : undefined, onNote: (n) => log(`advkit: note: data: ${n} (--resize ${mode})`) });
  } else {
    ds = await loadDataset(spec, options);
  }
  if (mode !== 'none') {
    const r = resizeDataset(ds, [H, W, C], mode);
    ds = r.ds;
    if (r.note) log(`advkit: note: data: ${r.note} (--resize ${mode})`);
  }
  checkShapes('--model/--data', model.inputShape, ds);
  if (ds.labels.length === 0) throw new InvalidArgumentError(`Error in --data: ${spec} holds no examples; an evaluation of nothing would pass every gate.`);
  // advkit's data is always pixels in [0, 1]; a model saying other bounds would be attacked outside them.
  if (model.bounds[0] !== 0 || model.bounds[1] !== 1) {
    throw new InvalidArgumentError(`Error in --model: the model's bounds [${model.bounds.join(', ')}] are not the data's pixel range [0, 1]; advkit's data is always in [0, 1]: give the range the model expects as its input range (--input-range ${model.bounds.join(',')}, or "inputRange" in advkit.json) instead of bounds.`);
  }
  return ds;
}

/** --head, --normalize, --input-range and --resize given in a --config file (strings there) parsed as the flags are. */
export function configuredModelOptions(o: Partial<ModelCliOptions>, fromConfig: object): void {
  const given = fromConfig as Record<string, unknown>;
  const parse = <T>(key: 'normalize' | 'inputRange' | 'resize', flag: string, f: (v: string) => T) => {
    const v = (o as Record<string, unknown>)[key];
    if (typeof v !== 'string' || given[key] !== v) return;
    try {
      (o as Record<string, unknown>)[key] = f(v);
    } catch (err) {
      throw new InvalidArgumentError(`Error in --config: "${key}" (${flag}) ${(err as Error).message}`);
    }
  };
  parse('normalize', '--normalize', normalizeOption);
  parse('inputRange', '--input-range', inputRangeOption);
  parse('resize', '--resize', resizeOption);
}

/**
 * Refuses epsilons larger than any perturbation inside the bounds can be (the bounds' range in
 * L∞, range · sqrt(pixels) in L2, range · pixels in L1): an `--eps 30` or `--eps 0,8` on [0, 1] images is a unit mistake
 * that would report a meaningless evaluation. `--allow-large-eps` lets it through.
 */
export function checkEpsRange(epsilons: readonly number[], norm: NormName, model: Classifier, allow: boolean | undefined): void {
  if (allow) return;
  const range = model.bounds[1] - model.bounds[0];
  const max = diameter(norm, range, model.inputShape[0] * model.inputShape[1] * model.inputShape[2]);
  const big = epsilons.find((e) => e > max);
  if (big !== undefined) {
    throw new InvalidArgumentError(`Error in --eps: ${big} is larger than any ${NORM_LABELS[norm]} perturbation of images in [${model.bounds.join(', ')}] can be (${Number(max.toPrecision(6))}); epsilons are in pixel units (8/255, not 8); pass --allow-large-eps if you mean it.`);
  }
}
