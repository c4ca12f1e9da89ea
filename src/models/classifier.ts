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
import { forward } from './compiled.js';

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
  /** Facts about the model a report should show (softmax detected, ...). */
  readonly warnings: readonly string[];
}

export interface Normalization {
  mean: number | readonly number[];
  std: number | readonly number[];
}

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
}

const DEFAULT_BOUNDS: Bounds = [0, 1];

function checkBounds(fn: string, bounds: Bounds): Bounds {
  check(Array.isArray(bounds) && bounds.length === 2 && Number.isFinite(bounds[0]) && Number.isFinite(bounds[1]) && bounds[0] < bounds[1], fn,
    () => `bounds must be [lo, hi] with finite lo < hi, but got ${show(bounds)}.`);
  return [bounds[0], bounds[1]];
}

function normalizer(fn: string, norm: Normalization | undefined, channels: number): ((x: tf.Tensor4D) => tf.Tensor4D) | undefined {
  if (!norm) return undefined;
  const vec = (v: number | readonly number[], name: string) => {
    const arr = typeof v === 'number' ? [v] : Array.from(v);
    check(arr.length === 1 || arr.length === channels, fn, () => `normalization.${name} must have 1 or ${channels} values (one per channel), but got ${arr.length}.`);
    check(arr.every((a) => Number.isFinite(a)), fn, () => `normalization.${name} must be finite, but got ${show(arr)}.`);
    return arr;
  };
  const mean = vec(norm.mean, 'mean');
  const std = vec(norm.std, 'std');
  check(std.every((s) => s > 0), fn, () => `normalization.std must be > 0, but got ${show(std)}.`);
  return (x) => tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(std)) as tf.Tensor4D);
}

/** Builds a Classifier from a logits function. */
export function fromFunction(fn: (x: tf.Tensor4D) => tf.Tensor2D, options: { numClasses: number; inputShape: ImageShape; bounds?: Bounds; randomized?: boolean; normalization?: Normalization; warnings?: string[] }): Classifier {
  const name = 'fromFunction';
  check(Number.isInteger(options.numClasses) && options.numClasses >= 2, name, () => `numClasses must be an integer >= 2, but got ${show(options.numClasses)}.`);
  check(Array.isArray(options.inputShape) && options.inputShape.length === 3 && options.inputShape.every((d) => Number.isInteger(d) && d > 0), name,
    () => `inputShape must be [height, width, channels], but got ${show(options.inputShape)}.`);
  const bounds = checkBounds(name, options.bounds ?? DEFAULT_BOUNDS);
  const norm = normalizer(name, options.normalization, options.inputShape[2]);
  return {
    logits: (x) => tf.tidy(() => fn(norm ? norm(x) : x)),
    bounds,
    numClasses: options.numClasses,
    inputShape: [...options.inputShape] as unknown as ImageShape,
    randomized: options.randomized ?? false,
    warnings: options.warnings ?? [],
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

function layerActivation(layer: tf.layers.Layer): string | undefined {
  const cfg = layer.getConfig() as { activation?: unknown };
  return typeof cfg.activation === 'string' ? cfg.activation : undefined;
}

/**
 * Builds a Classifier from a LayersModel whose single output is [N, numClasses].
 * A final softmax (a Dense or Activation layer with activation 'softmax') is removed so
 * that `logits` returns the pre-softmax scores.
 */
export function fromLayersModel(model: tf.LayersModel, options: ClassifierOptions = {}): Classifier {
  const fn = 'fromLayersModel';
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new ModelError(`Error in ${fn}: the model must have one input and one output, but has ${model.inputs.length} inputs and ${model.outputs.length} outputs.`);
  }
  const inShape = model.inputs[0]!.shape.slice(1);
  const inputShape = options.inputShape ?? (inShape.every((d) => typeof d === 'number') ? (inShape as number[]) : undefined);
  if (!inputShape || inputShape.length !== 3) {
    throw new ModelError(`Error in ${fn}: the model input shape [${inShape.join(', ')}] is not [height, width, channels]; pass inputShape, or build the model with a fixed image input.`);
  }
  const outShape = model.outputs[0]!.shape;
  const numClasses = outShape[outShape.length - 1];
  if (outShape.length !== 2 || typeof numClasses !== 'number' || numClasses < 2) {
    throw new ModelError(`Error in ${fn}: the model output shape [${outShape.join(', ')}] is not [batch, numClasses] with numClasses >= 2.`);
  }
  const bounds = checkBounds(fn, options.bounds ?? DEFAULT_BOUNDS);
  const warnings: string[] = [];
  const mode = options.output ?? 'auto';
  // apply, not predict: predict splits the batch into chunks of 32 and concatenates them,
  // which costs copies and extra ops in every attack step. On wasm a Sequential model of the
  // common layers runs through advkit's fused ops (models/compiled.ts).
  let run: (x: tf.Tensor4D) => tf.Tensor2D = (x) => forward(model, x, false) as tf.Tensor2D;

  const last = model.layers[model.layers.length - 1]!;
  if (mode !== 'logits' && layerActivation(last) === 'softmax') {
    const className = last.getClassName();
    if (className === 'Activation' || className === 'Dense') {
      const penultimate = tf.model({ inputs: model.inputs, outputs: last.input as tf.SymbolicTensor });
      if (className === 'Activation') {
        run = (x) => penultimate.apply(x, { training: false }) as tf.Tensor2D;
      } else {
        const useBias = (last.getConfig() as { useBias?: boolean }).useBias !== false;
        run = (x) => tf.tidy(() => {
          const h = penultimate.apply(x, { training: false }) as tf.Tensor2D;
          const [kernel, bias] = last.getWeights() as [tf.Tensor2D, tf.Tensor1D | undefined];
          const z = tf.matMul(h, kernel);
          return (useBias && bias ? tf.add(z, bias) : z) as tf.Tensor2D;
        });
      }
      warnings.push(`the model ends in softmax (layer '${last.name}'); advkit attacks its logits (the layer's input) instead, because gradients of probabilities saturate.`);
    } else {
      run = logOf(run);
      warnings.push(`the model ends in softmax inside layer '${last.name}' (${className}); advkit attacks log-probabilities, whose gradients can vanish: export the model without the softmax for a reliable evaluation.`);
    }
  } else if (mode === 'probabilities' || (mode === 'auto' && probeProbabilities(run, inputShape as unknown as ImageShape, bounds))) {
    run = logOf(run);
    warnings.push('the model outputs probabilities (rows are non-negative and sum to 1); advkit attacks log-probabilities, whose gradients can vanish when probabilities saturate: export the model without the softmax for a reliable evaluation.');
  }
  return fromFunction(run, { numClasses, inputShape: inputShape as unknown as ImageShape, bounds, normalization: options.normalization, warnings });
}

function logOf(run: (x: tf.Tensor4D) => tf.Tensor2D): (x: tf.Tensor4D) => tf.Tensor2D {
  return (x) => tf.tidy(() => tf.log(tf.maximum(run(x), 1e-30)) as tf.Tensor2D);
}

/** Builds a Classifier from a GraphModel (TensorFlow SavedModel / Keras export). */
export function fromGraphModel(model: tf.GraphModel, options: ClassifierOptions & { numClasses?: number } = {}): Classifier {
  const fn = 'fromGraphModel';
  const input = model.inputs[0];
  const shape = options.inputShape ?? input?.shape?.slice(1);
  if (!shape || shape.length !== 3 || shape.some((d) => !(d > 0))) {
    throw new ModelError(`Error in ${fn}: cannot tell the image shape from the graph's input (${show(input?.shape)}); pass inputShape [H, W, C].`);
  }
  const bounds = checkBounds(fn, options.bounds ?? DEFAULT_BOUNDS);
  let run = (x: tf.Tensor4D) => model.predict(x) as tf.Tensor2D;
  const probe = tf.tidy(() => run(tf.zeros([1, shape[0]!, shape[1]!, shape[2]!]) as tf.Tensor4D));
  const numClasses = options.numClasses ?? probe.shape[1];
  probe.dispose();
  if (probe.shape.length !== 2 || !(numClasses >= 2)) {
    throw new ModelError(`Error in ${fn}: the graph's output shape [${probe.shape.join(', ')}] is not [batch, numClasses].`);
  }
  const warnings: string[] = [];
  const mode = options.output ?? 'auto';
  if (mode === 'probabilities' || (mode === 'auto' && probeProbabilities(run, shape as unknown as ImageShape, bounds))) {
    run = logOf(run);
    warnings.push('the model outputs probabilities (rows are non-negative and sum to 1); advkit attacks log-probabilities, whose gradients can vanish when probabilities saturate: export the model without the softmax for a reliable evaluation.');
  }
  return fromFunction(run, { numClasses, inputShape: shape as unknown as ImageShape, bounds, normalization: options.normalization, warnings });
}

/** Predicted classes for a batch (argmax of logits). */
export function predict(model: Classifier, x: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => tf.argMax(model.logits(x), 1) as tf.Tensor1D);
}
