/**
 * The Classifier contract: everything attacks and evaluators need from a model.
 *
 * Images are NHWC in pixel space (`bounds`, default [0, 1]); normalization (mean/std) lives
 * inside the classifier, so epsilons are always in pixel units. `logits` returns raw scores:
 * a model that ends in softmax is detected and its logits used (or, where they cannot be
 * recovered, log-probabilities with a warning), because attacking probabilities weakens
 * gradient attacks.
 */
import * as tf from '@tensorflow/tfjs';
import { check, ModelError, show } from '../util/errors.js';
import { chooseHead, compileGraph, compileModel, graphEndpoints, graphHeads, layersHeads, type CompiledModel, type CompileReport, type Head } from './compiler/index.js';
import { lowerOnnx, type OnnxModel } from './compiler/onnx.js';
import { nativeModel, type NativeModel } from './native.js';

export type Bounds = readonly [number, number];
export type ImageShape = readonly [number, number, number];

export interface Classifier {
  /** Logits [N, numClasses] for images [N, H, W, C] in pixel space. Does not leak. */
  logits(x: tf.Tensor4D): tf.Tensor2D;
  readonly bounds: Bounds;
  readonly numClasses: number;
  readonly inputShape: ImageShape;
  /** True when two calls on the same input may give different logits. */
  readonly randomized: boolean;
  /** Facts about the model a report should show (probabilities instead of logits, ...). */
  readonly warnings: readonly string[];
  /** How `logits` relates to the model's own output (reports show it). */
  readonly output?: OutputInfo;
  /** The input preprocessing applied inside the classifier (reports show it). */
  readonly preprocessing?: Preprocessing;
  /**
   * How to build this classifier again in another thread: the model directory it was loaded from
   * (set by loadClassifier) and the wrappers put around it since (`defend` adds one when every
   * preprocessor can be described). A worker pool attacks only a classifier that has one.
   */
  readonly source?: ClassifierSource;
  /**
   * The model on the onnxruntime backend (models/native.ts): logits and objective gradients by
   * one asynchronous native run each; attacks use it where it answers, the tfjs path otherwise.
   * Set on compiled models; a wrapper (a defense) has none.
   */
  readonly native?: NativeModel;
}

/**
 * A serializable recipe for a classifier: load the model directory `location`, then apply each
 * wrapper in order. A wrapper names a module (its `import.meta.url`) and one of its exports,
 * `(classifier, args) => Classifier`, with JSON arguments; a worker thread imports it, so layers
 * above models (defenses) extend what a pool can run without the pool importing them.
 */
export interface ClassifierSource {
  readonly location: string;
  /** The options it was loaded with (head, preprocessing, bounds, ...), over advkit.json's. */
  readonly options?: ClassifierOptions;
  readonly wrappers?: readonly ClassifierWrapper[];
}

export interface ClassifierWrapper {
  readonly module: string;
  readonly export: string;
  readonly args: unknown;
}

/** True when two sources build the same classifier. */
export function sameSource(a: ClassifierSource | undefined, b: ClassifierSource | undefined): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * - logits: the model's output is used as it is;
 * - softmax-cut: the model ends in softmax and its input is used;
 * - sigmoid-binary: one sigmoid unit z (a binary detector) becomes the logits [0, z];
 * - log-probabilities: the model outputs probabilities that could not be cut; their logs are used.
 */
export interface OutputInfo {
  kind: 'logits' | 'softmax-cut' | 'sigmoid-binary' | 'log-probabilities';
  /** One sentence for reports. */
  detail: string;
  /** The output attacked, when the model has several or one was chosen (a signature key, node or layer). */
  head?: string;
}

export interface Normalization {
  mean: number | readonly number[];
  std: number | readonly number[];
}

/**
 * What the model expects of its input, applied inside the classifier so that attacks and
 * epsilons stay in pixel space: pixel values in `bounds` are first mapped linearly onto
 * `inputRange` (e.g. [-1, 1] for Keras MobileNet, [0, 255] for Caffe-style models), then
 * normalized, (x - mean) / std per channel, in the model's input units.
 */
export interface Preprocessing {
  inputRange?: Bounds;
  normalization?: Normalization;
}

/**
 * What a classifier does to its inputs, in one phrase ("pixels in [0, 1] mapped onto [-1, 1], then
 * normalized as (x - mean) / std with mean 0.485,0.456,0.406 and std 0.229,0.224,0.225"), for
 * reports, `advkit inspect` and the CLI's log.
 */
export function describePreprocessing(bounds: readonly number[], p: Preprocessing): string {
  const list = (v: number | readonly number[]) => (typeof v === 'number' ? [v] : [...v]).join(',');
  return [
    p.inputRange ? `pixels in [${bounds.join(', ')}] mapped onto [${p.inputRange.join(', ')}]` : '',
    p.normalization ? `normalized as (x - mean) / std with mean ${list(p.normalization.mean)} and std ${list(p.normalization.std)}` : '',
  ].filter(Boolean).join(', then ');
}

/** torchvision's ImageNet statistics (`--normalize imagenet`), for inputs in [0, 1]. */
export const IMAGENET_NORMALIZATION: Normalization = Object.freeze({ mean: Object.freeze([0.485, 0.456, 0.406]), std: Object.freeze([0.229, 0.224, 0.225]) });

export interface ClassifierOptions {
  bounds?: Bounds;
  /** Applied inside the classifier: logits(x) = model((x - mean) / std). */
  normalization?: Normalization;
  /**
   * What the model outputs. 'auto' (default) detects a final softmax (by the layer
   * configuration, then by probing the outputs) and uses logits instead.
   */
  output?: 'auto' | 'logits' | 'probabilities';
  /** Input shape [H, W, C] when the model does not fix it. */
  inputShape?: ImageShape;
  /**
   * The range the model expects its inputs in (e.g. [-1, 1]); pixel values in `bounds` are mapped
   * onto it inside the classifier, before `normalization`. Default: the bounds themselves.
   */
  inputRange?: Bounds;
  /**
   * The output to attack when the model has several: a signature key, an output node (`name` or
   * `name:slot`) or, for a LayersModel, an output layer's name.
   */
  head?: string;
}

const DEFAULT_BOUNDS: Bounds = [0, 1];

function checkBounds(fn: string, bounds: Bounds, name = 'bounds'): Bounds {
  check(Array.isArray(bounds) && bounds.length === 2 && Number.isFinite(bounds[0]) && Number.isFinite(bounds[1]) && bounds[0] < bounds[1], fn,
    () => `${name} must be [lo, hi] with finite lo < hi, but got ${show(bounds)}.`);
  return [bounds[0], bounds[1]];
}

function checkedNormalization(fn: string, norm: Normalization, channels: number): { mean: number[]; std: number[] } {
  const vec = (v: number | readonly number[], name: string) => {
    const arr = typeof v === 'number' ? [v] : Array.isArray(v) ? Array.from(v) : [NaN];
    check(arr.length === 1 || arr.length === channels, fn, () => `normalization.${name} must have 1 or ${channels} values (one per channel), but got ${arr.length}.`);
    check(arr.every((a) => typeof a === 'number' && Number.isFinite(a)), fn, () => `normalization.${name} must be finite numbers, but got ${show(v)}.`);
    return arr;
  };
  const mean = vec(norm.mean, 'mean');
  const std = vec(norm.std, 'std');
  check(std.every((s) => s > 0), fn, () => `normalization.std must be > 0, but got ${show(std)}.`);
  return { mean, std };
}

/** The map from pixel space to the model's input space (Preprocessing), or undefined for none. */
function preprocessor(fn: string, p: Preprocessing, bounds: Bounds, channels: number): ((x: tf.Tensor4D) => tf.Tensor4D) | undefined {
  const range = p.inputRange === undefined ? undefined : checkBounds(fn, p.inputRange, 'inputRange');
  const norm = p.normalization === undefined ? undefined : checkedNormalization(fn, p.normalization, channels);
  if (!range && !norm) return undefined;
  const scale = range ? (range[1] - range[0]) / (bounds[1] - bounds[0]) : 1;
  const offset = range ? range[0] - bounds[0] * scale : 0;
  return (x) => tf.tidy(() => {
    let y: tf.Tensor = range ? tf.add(tf.mul(x, scale), offset) : x;
    if (norm) y = tf.div(tf.sub(y, tf.tensor1d(norm.mean)), tf.tensor1d(norm.std));
    return y as tf.Tensor4D;
  });
}

/** The preprocessing as one per-channel map x·scale + offset (for the ONNX emitter), or undefined for none. */
function preprocessAffine(p: Preprocessing, bounds: Bounds, channels: number): { scale: number[]; offset: number[] } | undefined {
  if (!p.inputRange && !p.normalization) return undefined;
  const s = p.inputRange ? (p.inputRange[1] - p.inputRange[0]) / (bounds[1] - bounds[0]) : 1;
  const o = p.inputRange ? p.inputRange[0] - bounds[0] * s : 0;
  const norm = p.normalization ? checkedNormalization('preprocessing', p.normalization, channels) : { mean: [0], std: [1] };
  const at = (v: number[], c: number) => v[v.length === 1 ? 0 : c]!;
  const scale = Array.from({ length: channels }, (_, c) => s / at(norm.std, c));
  return { scale, offset: Array.from({ length: channels }, (_, c) => (o - at(norm.mean, c)) / at(norm.std, c)) };
}

/** Builds a Classifier from a logits function. */
export function fromFunction(fn: (x: tf.Tensor4D) => tf.Tensor2D, options: { numClasses: number; inputShape: ImageShape; bounds?: Bounds; randomized?: boolean; normalization?: Normalization; inputRange?: Bounds; warnings?: string[]; output?: OutputInfo }): Classifier {
  const name = 'fromFunction';
  check(Number.isInteger(options.numClasses) && options.numClasses >= 2, name, () => `numClasses must be an integer >= 2, but got ${show(options.numClasses)}.`);
  check(Array.isArray(options.inputShape) && options.inputShape.length === 3 && options.inputShape.every((d) => Number.isInteger(d) && d > 0), name,
    () => `inputShape must be [height, width, channels], but got ${show(options.inputShape)}.`);
  const bounds = checkBounds(name, options.bounds ?? DEFAULT_BOUNDS);
  const preprocessing: Preprocessing = { ...(options.inputRange ? { inputRange: [options.inputRange[0], options.inputRange[1]] as const } : {}), ...(options.normalization ? { normalization: options.normalization } : {}) };
  const pre = preprocessor(name, preprocessing, bounds, options.inputShape[2]);
  return {
    logits: (x) => tf.tidy(() => fn(pre ? pre(x) : x)),
    bounds,
    numClasses: options.numClasses,
    inputShape: [...options.inputShape] as unknown as ImageShape,
    randomized: options.randomized ?? false,
    warnings: options.warnings ?? [],
    ...(options.output ? { output: options.output } : {}),
    ...(pre ? { preprocessing } : {}),
  };
}

function isProbabilityOutput(out: tf.Tensor2D): boolean {
  const data = out.dataSync();
  const k = out.shape[1];
  for (let r = 0; r < out.shape[0]; r++) {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const v = data[r * k + c]!;
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/** Probes a model with fixed inputs spread over the bounds: do its outputs look like probabilities? */
function probeProbabilities(run: (x: tf.Tensor4D) => tf.Tensor2D, shape: ImageShape, bounds: Bounds): boolean {
  const probe = tf.tidy(() => {
    const n = 4;
    const size = shape[0] * shape[1] * shape[2];
    const vals = new Float32Array(n * size);
    for (let i = 0; i < vals.length; i++) vals[i] = bounds[0] + (bounds[1] - bounds[0]) * (((i * 2654435761) >>> 0) / 4294967296);
    return run(tf.tensor4d(vals, [n, ...shape]));
  });
  const result = isProbabilityOutput(probe);
  probe.dispose();
  return result;
}

const PROBABILITIES_WARNING = 'the model outputs probabilities (rows are non-negative and sum to 1); advkit attacks log-probabilities, whose gradients can vanish when probabilities saturate: export the model without the softmax for a reliable evaluation.';

function lastNodeName(report: CompileReport, merged: string): string {
  const m = /'([^']+)'/.exec(report.merged.find((s) => s.includes(merged)) ?? '');
  return m ? m[1]! : '?';
}

/**
 * The classifier over a compiled model: logits from the compiled graph (final softmax cut, one
 * sigmoid unit made two logits), the output kind recorded, probabilities detected by probing
 * when a softmax is hidden where the compiler cannot cut it.
 */
function fromCompiled(fn: string, compiled: CompiledModel, outUnits: number, inputShape: ImageShape, options: ClassifierOptions & { numClasses?: number }, head: Head | undefined): Classifier {
  const bounds = checkBounds(fn, options.bounds ?? DEFAULT_BOUNDS);
  const mode = options.output ?? 'auto';
  const kind = compiled.report.outputKind;
  let run = (x: tf.Tensor4D) => compiled.forward(x, false) as tf.Tensor2D;
  let numClasses = outUnits;
  let output: OutputInfo;
  const warnings: string[] = [];
  if (kind === 'sigmoid-binary') {
    if (outUnits !== 1) {
      throw new ModelError(`Error in ${fn}: the model ends in ${outUnits} sigmoid units (multi-label outputs): advkit attacks classifiers, whose outputs are one score per class (softmax or logits) or one sigmoid unit (a binary detector).`);
    }
    numClasses = 2;
    output = { kind, detail: `the model ends in one sigmoid unit (node '${lastNodeName(compiled.report, 'sigmoid')}'); advkit attacks the two-class logits [0, z], z the sigmoid's input (the same decisions, honest gradients).` };
  } else if (kind === 'softmax-cut') {
    output = { kind, detail: `the model ends in softmax (node '${lastNodeName(compiled.report, 'softmax')}'); advkit attacks its logits (the softmax's input), because gradients of probabilities saturate.` };
  } else if (mode === 'probabilities' || (mode === 'auto' && outUnits >= 2 && probeProbabilities(run, inputShape, bounds))) {
    run = logOf(run);
    warnings.push(PROBABILITIES_WARNING);
    output = { kind: 'log-probabilities', detail: 'the model outputs probabilities; advkit attacks their logarithms.' };
  } else {
    output = { kind: 'logits', detail: 'the model outputs logits; advkit attacks them as they are.' };
  }
  if (options.numClasses !== undefined) numClasses = options.numClasses;
  const which = head ? `head '${head.name}'` : "the model's output";
  if (!(Number.isInteger(numClasses) && numClasses >= 2)) {
    throw new ModelError(`Error in ${fn}: ${which} has ${outUnits} unit${outUnits === 1 ? '' : 's'}, which is not a classifier's [batch, numClasses] with numClasses >= 2 (one unit compiles only as a sigmoid detector).`);
  }
  if (head) output = { ...output, head: head.name, detail: `head '${head.name}': ${output.detail}` };
  const classifier = fromFunction(run, { numClasses, inputShape, bounds, normalization: options.normalization, inputRange: options.inputRange, warnings, output });
  const preprocess = preprocessAffine(classifier.preprocessing ?? {}, bounds, inputShape[2]);
  const native = nativeModel(compiled.graph, inputShape, { ...(preprocess ? { preprocess } : {}), logOutput: output.kind === 'log-probabilities' });
  return { ...classifier, native };
}

function compileOrThrow(fn: string, model: tf.LayersModel | tf.GraphModel, mode: ClassifierOptions['output'], head: Head | undefined): CompiledModel {
  try {
    return compileModel(model, { cutOutput: mode !== 'logits' && mode !== 'probabilities', ...(head ? { head: head.ref } : {}) });
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(`Error in ${fn}: ${(err as Error).message}.`);
  }
}

/** The head to build on (undefined for a one-output model attacked without a choice). */
function pickHead(fn: string, heads: Head[], requested: string | undefined): Head | undefined {
  const head = chooseHead(fn, heads, requested);
  return heads.length > 1 || requested !== undefined ? head : undefined;
}

/**
 * Builds a Classifier from a LayersModel (Sequential or functional) with one image input and one
 * output: [N, numClasses] logits or probabilities, or one sigmoid unit. The model runs through
 * advkit's compiler (models/compiler): a final softmax is cut so that `logits` returns the
 * pre-softmax scores, and a single sigmoid unit z becomes the logits [0, z].
 */
export function fromLayersModel(model: tf.LayersModel, options: ClassifierOptions = {}): Classifier {
  const fn = 'fromLayersModel';
  if (model.inputs.length !== 1) {
    throw new ModelError(`Error in ${fn}: the model must have one image input, but has ${model.inputs.length} inputs.`);
  }
  const head = pickHead(fn, layersHeads(model), options.head);
  const inShape = model.inputs[0]!.shape.slice(1);
  const inputShape = options.inputShape ?? (inShape.every((d) => typeof d === 'number') ? (inShape as number[]) : undefined);
  if (!inputShape || inputShape.length !== 3) {
    throw new ModelError(`Error in ${fn}: the model input shape [${inShape.join(', ')}] is not [height, width, channels]; pass inputShape, or build the model with a fixed image input.`);
  }
  const outShape = model.outputs[head ? (head.ref as number) : 0]!.shape;
  const units = outShape[outShape.length - 1];
  if (outShape.length !== 2 || typeof units !== 'number') {
    throw new ModelError(`Error in ${fn}: ${head ? `head '${head.name}'` : 'the model output'} has shape [${outShape.join(', ')}], not [batch, numClasses].`);
  }
  const compiled = compileOrThrow(fn, model, options.output, head);
  return fromCompiled(fn, compiled, units, inputShape as unknown as ImageShape, options, head);
}

function logOf(run: (x: tf.Tensor4D) => tf.Tensor2D): (x: tf.Tensor4D) => tf.Tensor2D {
  return (x) => tf.tidy(() => tf.log(tf.maximum(run(x), 1e-30)) as tf.Tensor2D);
}

/**
 * Builds a Classifier from a GraphModel (a SavedModel or Keras model through the converter),
 * through advkit's compiler like `fromLayersModel`: a final Softmax is cut, one Sigmoid unit
 * becomes two logits.
 */
export function fromGraphModel(model: tf.GraphModel, options: ClassifierOptions & { numClasses?: number } = {}): Classifier {
  const fn = 'fromGraphModel';
  const { inputs } = graphEndpoints(model);
  if (inputs.length !== 1) {
    throw new ModelError(`Error in ${fn}: the graph has ${inputs.length} inputs (${inputs.map((e) => e.key).join(', ')}); advkit attacks models with one image input.`);
  }
  const input = inputs[0]!;
  const shape = options.inputShape ?? input.shape?.slice(1);
  if (!shape || shape.length !== 3 || shape.some((d) => !(d > 0))) {
    throw new ModelError(`Error in ${fn}: cannot tell the image shape from the graph's input '${input.key}' (${show(input.shape)}); pass inputShape [H, W, C].`);
  }
  const dtype = input.dtype === undefined ? undefined : input.dtype.replace(/^DT_/, '').toLowerCase();
  if (dtype !== undefined && dtype !== 'float' && dtype !== 'float32') {
    throw new ModelError(`Error in ${fn}: the graph's input '${input.key}' is ${dtype}, but attacks perturb float32 images; re-export the model with a float32 input (cast or quantize inside the model if it must).`);
  }
  const heads = graphHeads(model);
  // Shapes the signature does not give come from one forward pass of the model's own executor.
  if (heads.some((h) => !h.shape || h.shape.length !== 2 || h.shape[1]! < 0)) {
    const probes = tf.tidy(() => {
      const out = model.execute({ [input.node]: tf.zeros([1, shape[0]!, shape[1]!, shape[2]!]) }, heads.map((h) => String(h.ref)));
      return Array.isArray(out) ? out : [out];
    });
    probes.forEach((t, i) => { heads[i]!.shape = [-1, ...t.shape.slice(1)]; });
    tf.dispose(probes);
  }
  const head = pickHead(fn, heads, options.head);
  const outShape = (head ?? heads[0]!).shape!;
  if (outShape.length !== 2) {
    throw new ModelError(`Error in ${fn}: ${head ? `head '${head.name}'` : "the graph's output"} has shape [${outShape.join(', ')}], not [batch, numClasses].`);
  }
  const compiled = compileOrThrow(fn, model, options.output, head);
  return fromCompiled(fn, compiled, outShape[1]!, shape as unknown as ImageShape, options, head);
}

/**
 * Builds a Classifier from an ONNX model (a decoded ModelProto; `loadClassifier` reads the file):
 * its NCHW graph lowered to advkit's NHWC compiler graph (compiler/onnx.ts), so the classifier
 * takes images [N, H, W, C] in pixel space like every other, with the same softmax cut and
 * sigmoid handling. `external` reads tensors kept in external data files.
 */
export function fromOnnx(model: OnnxModel, options: ClassifierOptions & { numClasses?: number; external?: (location: string, offset: number, length: number) => Uint8Array } = {}): Classifier {
  const fn = 'fromOnnx';
  const lowered = lowerOnnx(model, { head: options.head, inputShape: options.inputShape, external: options.external });
  const mode = options.output;
  const compiled = compileGraph(lowered.graph, 'onnx', { cutOutput: mode !== 'logits' && mode !== 'probabilities' });
  const head = lowered.outputs.length > 1 || options.head !== undefined ? { name: lowered.head, ref: lowered.head, aliases: [lowered.head] } : undefined;
  return fromCompiled(fn, compiled, lowered.units, lowered.inputShape as unknown as ImageShape, options, head);
}

/** Logits through the native model where it answers (onnxruntime), else `logits`. The caller disposes them. */
export async function logitsAsync(model: Classifier, x: tf.Tensor4D): Promise<tf.Tensor2D> {
  return (await model.native?.logits(x)) ?? model.logits(x);
}

/** Predicted classes for a batch (argmax of logits). */
export function predict(model: Classifier, x: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.argMax(model.logits(x), 1) as tf.Tensor1D);
}

/**
 * Predicted classes for a batch, refusing logits that are not [batch, numClasses] or not finite
 * (a broken model would otherwise be reported as broken by every attack). For the first forward
 * pass of a run; the caller disposes the result.
 */
export async function checkedPredictions(fn: string, model: Classifier, x: tf.Tensor4D): Promise<Int32Array> {
  const logits = await logitsAsync(model, x);
  try {
    const [n] = x.shape;
    if (logits.rank !== 2 || logits.shape[0] !== n || logits.shape[1] !== model.numClasses) {
      throw new ModelError(`Error in ${fn}: the model returned logits of shape [${logits.shape.join(', ')}] for ${n} images, not [${n}, ${model.numClasses}]; check numClasses and the model's output.`);
    }
    const [finite, pred] = tf.tidy(() => [tf.all(tf.isFinite(logits)), tf.argMax(logits, 1)]);
    const ok = (await finite.data())[0] === 1;
    const p = Int32Array.from(await pred.data());
    tf.dispose([finite, pred]);
    if (!ok) throw new ModelError(`Error in ${fn}: the model returned NaN or infinite logits on the clean inputs; a model that does is broken (non-finite weights, a division by zero), and any attack result on it would be meaningless.`);
    return p;
  } finally {
    logits.dispose();
  }
}
