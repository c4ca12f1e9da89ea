/**
 * Input-preprocessing defenses with honest gradients.
 *
 * A Preprocessor is `{ name, apply(x), gradient, randomized }`. `defend(model, [...])` returns a
 * Classifier whose logits are model.logits(pₙ(…p₁(x))), so every attack works on it unchanged,
 * and whose gradients are
 * - exact where the preprocessing is differentiable (Gaussian noise);
 * - BPDA where it is not (Athalye, Carlini, Wagner 2018, "Obfuscated Gradients Give a False Sense
 *   of Security", arXiv:1802.00420): the forward pass uses the preprocessing, the backward pass
 *   the identity (or a custom differentiable surrogate);
 * - EOT where it is randomized: logits are averaged over `eot` draws, so the gradient is the mean
 *   gradient over the draws (Athalye et al. 2018, arXiv:1707.07397).
 * The choice is automatic, can be overridden per preprocessor, and is named in `describe()` so
 * reports can say how the defense was attacked.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier, ClassifierSource } from '../models/classifier.js';
import { check, checkFiniteNumber, InvalidArgumentError, show } from '../util/errors.js';
import { Rng, seedFor } from '../util/random.js';

export type GradientMode = 'exact' | 'bpda' | ((x: tf.Tensor4D) => tf.Tensor4D);

/**
 * A preprocessor as data: its kind (the CLI's names), its arguments and its gradient rule, from
 * which `preprocessorFromSpec` builds it again (in a worker thread, for instance).
 */
export interface PreprocessorSpec {
  readonly kind: PreprocessorKind;
  readonly args: readonly number[];
  readonly gradient?: 'exact' | 'bpda';
}

export const PREPROCESSOR_KINDS = ['bit-depth', 'median', 'jpeg', 'tv', 'noise'] as const;
export type PreprocessorKind = (typeof PREPROCESSOR_KINDS)[number];

export interface Preprocessor {
  readonly name: string;
  /**
   * The forward transformation; images stay in [0, 1]. `draw` numbers the EOT draws of one call
   * of a randomized preprocessor (0, 1, ...); deterministic ones ignore it.
   */
  apply(x: tf.Tensor4D, draw?: number): tf.Tensor4D;
  /** 'exact' (differentiate apply), 'bpda' (identity backward), or a differentiable surrogate. */
  readonly gradient: GradientMode;
  /** True when apply draws random numbers (then EOT is used). */
  readonly randomized: boolean;
  /** False when tfjs cannot differentiate apply at all (it sorts): 'exact' is then refused. */
  readonly hasExactGradient?: boolean;
  /** What it is, as data (absent for a preprocessor with a surrogate gradient or built by hand). */
  readonly spec?: PreprocessorSpec;
}

/** Bit-depth reduction to `bits` bits per channel (Xu, Evans, Qi 2018). BPDA by default. */
export function bitDepth(bits: number): Preprocessor {
  checkFiniteNumber('bitDepth', 'bits', bits, { integer: true, min: 1, max: 16 });
  const levels = 2 ** bits - 1;
  return { name: `bit-depth(${bits})`, gradient: 'bpda', randomized: false, spec: { kind: 'bit-depth', args: [bits] }, apply: (x) => tf.tidy(() => tf.div(tf.round(tf.mul(x, levels)), levels) as tf.Tensor4D) };
}

/** Median smoothing over a k x k window per channel, edges padded by reflection. BPDA by default. */
export function medianSmoothing(k: number): Preprocessor {
  checkFiniteNumber('medianSmoothing', 'k', k, { integer: true, min: 1, max: 15 });
  check(k % 2 === 1, 'medianSmoothing', () => `k must be odd (the window needs a centre pixel), but got ${k}; use ${k + 1} or ${k - 1}.`);
  const r = (k - 1) / 2;
  return {
    name: `median(${k})`, gradient: 'bpda', randomized: false, hasExactGradient: false, spec: { kind: 'median', args: [k] },
    apply: (x) => tf.tidy(() => {
      const [, h, w] = x.shape;
      const padded = tf.mirrorPad(x, [[0, 0], [r, r], [r, r], [0, 0]], 'reflect');
      const windows: tf.Tensor4D[] = [];
      for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) windows.push(tf.slice(padded, [0, dy, dx, 0], [-1, h, w, -1]));
      // [N, H, W, C, k*k]; the median is the middle of the sorted window.
      const stacked = tf.stack(windows, 4);
      const top = tf.topk(stacked, (k * k + 1) / 2).values;
      return tf.squeeze(tf.slice(top, [0, 0, 0, 0, (k * k - 1) / 2], [-1, -1, -1, -1, 1]), [4]) as tf.Tensor4D;
    }),
  };
}

/** The IJG (libjpeg) base quantization tables, Annex K of the JPEG standard. */
const LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
const CHROMA_Q = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99];

/** A base table scaled by quality as libjpeg does (jpeg_quality_scaling), entries in [1, 255]. */
export function jpegQuantTable(base: readonly number[], quality: number): number[] {
  const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - 2 * quality;
  return base.map((q) => Math.min(255, Math.max(1, Math.floor((q * scale + 50) / 100))));
}

/** The orthonormal 8-point DCT-II matrix. */
function dctMatrix(): number[] {
  const m: number[] = [];
  for (let k = 0; k < 8; k++) for (let n = 0; n < 8; n++) m.push((k === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * n + 1) * k * Math.PI) / 16));
  return m;
}

/** JPEG's lossy core on one channel [N, H, W] of values 0..255: 8x8 DCT, quantize, inverse DCT. */
function jpegChannel(v: tf.Tensor3D, table: number[]): tf.Tensor3D {
  const [n, h, w] = v.shape;
  const H = Math.ceil(h / 8) * 8;
  const W = Math.ceil(w / 8) * 8;
  // libjpeg replicates the last row and column into the partial blocks.
  let p: tf.Tensor3D = v;
  if (H > h) p = tf.concat([p, tf.tile(tf.slice(p, [0, h - 1, 0], [-1, 1, -1]), [1, H - h, 1])], 1) as tf.Tensor3D;
  if (W > w) p = tf.concat([p, tf.tile(tf.slice(p, [0, 0, w - 1], [-1, -1, 1]), [1, 1, W - w])], 2) as tf.Tensor3D;
  const blocks = tf.reshape(tf.transpose(tf.reshape(tf.sub(p, 128), [n, H / 8, 8, W / 8, 8]), [0, 1, 3, 2, 4]), [-1, 8, 8]) as tf.Tensor3D;
  const D = tf.tensor2d(dctMatrix(), [8, 8]);
  const Q = tf.tensor2d(table, [8, 8]);
  const coef = tf.matMul(tf.matMul(D, blocks), D, false, true);
  const quant = tf.mul(tf.round(tf.div(coef, Q)), Q);
  const back = tf.add(tf.matMul(tf.matMul(D, quant, true, false), D), 128);
  const img = tf.reshape(tf.transpose(tf.reshape(back, [n, H / 8, W / 8, 8, 8]), [0, 1, 3, 2, 4]), [n, H, W]);
  return tf.clipByValue(tf.round(tf.slice(img, [0, 0, 0], [-1, h, w])), 0, 255) as tf.Tensor3D;
}

/**
 * JPEG compression at `quality` (1..100), decoded back (Dziugaite et al. 2016; Guo et al. 2018):
 * baseline JPEG's lossy steps — level shift, 8x8 DCT, libjpeg's quality-scaled quantization
 * tables, rounding, inverse DCT, 8-bit rounding; colour through JFIF YCbCr with 4:4:4 chroma.
 * Entropy coding is lossless and skipped. Written with tensor ops so it runs inside a forward pass
 * (sharp is async-only); the tests compare it with sharp's libjpeg round trip. BPDA by default.
 */
export function jpeg(quality: number): Preprocessor {
  checkFiniteNumber('jpeg', 'quality', quality, { integer: true, min: 1, max: 100 });
  const luma = jpegQuantTable(LUMA_Q, quality);
  const chroma = jpegQuantTable(CHROMA_Q, quality);
  return {
    name: `jpeg(${quality})`, gradient: 'bpda', randomized: false, spec: { kind: 'jpeg', args: [quality] },
    apply: (x) => tf.tidy(() => {
      const px = tf.round(tf.mul(tf.clipByValue(x, 0, 1), 255));
      const c = x.shape[3];
      const ch = (t: tf.Tensor, i: number) => tf.squeeze(tf.slice(t, [0, 0, 0, i], [-1, -1, -1, 1]), [3]) as tf.Tensor3D;
      if (c === 1) return tf.div(tf.expandDims(jpegChannel(ch(px, 0), luma), 3), 255) as tf.Tensor4D;
      const [r, g, b] = [ch(px, 0), ch(px, 1), ch(px, 2)];
      const y = tf.addN([tf.mul(r, 0.299), tf.mul(g, 0.587), tf.mul(b, 0.114)]) as tf.Tensor3D;
      const cb = tf.add(tf.addN([tf.mul(r, -0.168736), tf.mul(g, -0.331264), tf.mul(b, 0.5)]), 128) as tf.Tensor3D;
      const cr = tf.add(tf.addN([tf.mul(r, 0.5), tf.mul(g, -0.418688), tf.mul(b, -0.081312)]), 128) as tf.Tensor3D;
      const [Y, Cb, Cr] = [jpegChannel(y, luma), tf.sub(jpegChannel(cb, chroma), 128), tf.sub(jpegChannel(cr, chroma), 128)];
      const R = tf.add(Y, tf.mul(Cr, 1.402));
      const G = tf.sub(tf.sub(Y, tf.mul(Cb, 0.344136)), tf.mul(Cr, 0.714136));
      const B = tf.add(Y, tf.mul(Cb, 1.772));
      return tf.div(tf.clipByValue(tf.round(tf.stack([R, G, B], 3)), 0, 255), 255) as tf.Tensor4D;
    }),
  };
}

/**
 * Total-variation denoising (Rudin–Osher–Fatemi) by Chambolle's projection algorithm (2004):
 * argmin_u ‖u − x‖²/2 + weight·TV(u), per channel, `iterations` steps of size 1/8.
 * BPDA by default (Guo et al. 2018 use TV minimization as a defense).
 */
export function tvMinimization(weight = 0.1, iterations = 30): Preprocessor {
  checkFiniteNumber('tvMinimization', 'weight', weight, { min: 0, minExclusive: true });
  checkFiniteNumber('tvMinimization', 'iterations', iterations, { integer: true, min: 1 });
  const grad = (u: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] => {
    const [, h, w] = u.shape;
    const gy = tf.pad(tf.sub(tf.slice(u, [0, 1, 0, 0], [-1, h - 1, -1, -1]), tf.slice(u, [0, 0, 0, 0], [-1, h - 1, -1, -1])), [[0, 0], [0, 1], [0, 0], [0, 0]]) as tf.Tensor4D;
    const gx = tf.pad(tf.sub(tf.slice(u, [0, 0, 1, 0], [-1, -1, w - 1, -1]), tf.slice(u, [0, 0, 0, 0], [-1, -1, w - 1, -1])), [[0, 0], [0, 0], [0, 1], [0, 0]]) as tf.Tensor4D;
    return [gy, gx];
  };
  // The divergence is minus the adjoint of the forward-difference gradient.
  const div = (py: tf.Tensor4D, px: tf.Tensor4D): tf.Tensor4D => {
    const [, h, w] = py.shape;
    const dy = tf.sub(py, tf.pad(tf.slice(py, [0, 0, 0, 0], [-1, h - 1, -1, -1]), [[0, 0], [1, 0], [0, 0], [0, 0]]));
    const dx = tf.sub(px, tf.pad(tf.slice(px, [0, 0, 0, 0], [-1, -1, w - 1, -1]), [[0, 0], [0, 0], [1, 0], [0, 0]]));
    // Last row/column of p is zero by construction of the gradient, so this is the exact adjoint.
    return tf.add(dy, dx) as tf.Tensor4D;
  };
  return {
    name: `tv(${weight}, ${iterations})`, gradient: 'bpda', randomized: false, spec: { kind: 'tv', args: [weight, iterations] },
    apply: (x) => tf.tidy(() => {
      let py = tf.zerosLike(x) as tf.Tensor4D;
      let px = tf.zerosLike(x) as tf.Tensor4D;
      const tau = 0.125;
      for (let i = 0; i < iterations; i++) {
        const [gy, gx] = grad(tf.sub(div(py, px), tf.div(x, weight)) as tf.Tensor4D);
        const norm = tf.add(1, tf.mul(tau, tf.sqrt(tf.add(tf.square(gy), tf.square(gx)))));
        py = tf.div(tf.add(py, tf.mul(tau, gy)), norm) as tf.Tensor4D;
        px = tf.div(tf.add(px, tf.mul(tau, gx)), norm) as tf.Tensor4D;
      }
      return tf.clipByValue(tf.sub(x, tf.mul(weight, div(py, px))), 0, 1) as tf.Tensor4D;
    }),
  };
}

/**
 * Additive Gaussian noise of standard deviation sigma, clipped to [0, 1]: randomized and
 * differentiable (exact gradient per draw; EOT over draws). Each image's noise is drawn from a
 * seed made of `seed`, the image's own pixels and the draw number, and nothing else: no call
 * counter, no state. So the noise an image gets does not depend on what ran before, on the batch
 * it is in, or on the thread (a worker pool gives the same bytes as one thread); a new input (an
 * attack's next iterate) gets new noise, and EOT's draws differ from each other.
 */
export function gaussianNoise(sigma: number, seed = 0): Preprocessor {
  checkFiniteNumber('gaussianNoise', 'sigma', sigma, { min: 0, minExclusive: true });
  checkFiniteNumber('gaussianNoise', 'seed', seed, { integer: true, min: 0 });
  return {
    name: `gaussian-noise(${sigma})`, gradient: 'exact', randomized: true, spec: { kind: 'noise', args: [sigma, seed] },
    apply: (x, draw = 0) => tf.tidy(() => tf.clipByValue(tf.add(x, tf.tensor(imageKeyedNoise(x, sigma, seed, draw), x.shape)), 0, 1) as tf.Tensor4D),
  };
}

/** Gaussian noise for each image of x from (seed, a hash of the image's float32 bits, draw). */
function imageKeyedNoise(x: tf.Tensor4D, sigma: number, seed: number, draw: number): Float32Array {
  const values = x.dataSync() as Float32Array;
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const per = x.shape[1] * x.shape[2] * x.shape[3];
  const noise = new Float32Array(values.length);
  for (let i = 0; i < x.shape[0]; i++) {
    let h = 0x811c9dc5;
    for (let j = i * per; j < (i + 1) * per; j++) h = Math.imul(h ^ bits[j]!, 0x01000193);
    const rng = new Rng(seedFor(seed, h >>> 0, draw));
    // Box–Muller, two values per pair of uniforms.
    for (let j = i * per; j < (i + 1) * per; j += 2) {
      const r = sigma * Math.sqrt(-2 * Math.log(1 - rng.next()));
      const a = 2 * Math.PI * rng.next();
      noise[j] = r * Math.cos(a);
      if (j + 1 < (i + 1) * per) noise[j + 1] = r * Math.sin(a);
    }
  }
  return noise;
}

/** Builds a preprocessor from its spec (the inverse of `Preprocessor.spec`). */
export function preprocessorFromSpec(spec: PreprocessorSpec): Preprocessor {
  const a = spec.args;
  const p = spec.kind === 'bit-depth' ? bitDepth(a[0]!)
    : spec.kind === 'median' ? medianSmoothing(a[0]!)
      : spec.kind === 'jpeg' ? jpeg(a[0]!)
        : spec.kind === 'tv' ? tvMinimization(a[0], a[1])
          : spec.kind === 'noise' ? gaussianNoise(a[0]!, a[1])
            : undefined;
  if (!p) throw new InvalidArgumentError(`Error in preprocessorFromSpec: unknown kind ${show(spec.kind)}; use one of ${PREPROCESSOR_KINDS.join(', ')}.`);
  return spec.gradient ? withGradient(p, spec.gradient) : p;
}

/** Applies preprocessors in order (forward only, no gradient rules). */
export function applyPreprocessors(preprocessors: readonly Preprocessor[], x: tf.Tensor4D, draw = 0): tf.Tensor4D {
  return preprocessors.reduce((v, p) => p.apply(v, draw), x);
}

/**
 * A preprocessor with another gradient rule (e.g. exact BPDA off, or a surrogate). A surrogate
 * function cannot be described as data, so the result has no spec (a pool cannot run it).
 */
export function withGradient(p: Preprocessor, gradient: GradientMode): Preprocessor {
  const spec = p.spec && typeof gradient === 'string' ? { ...p.spec, gradient } : undefined;
  return { ...p, gradient, spec };
}

function withBackward(p: Preprocessor): (x: tf.Tensor4D, draw: number) => tf.Tensor4D {
  if (p.gradient === 'exact') return (x, draw) => p.apply(x, draw);
  const surrogate = p.gradient === 'bpda' ? undefined : p.gradient;
  let draw = 0; // read synchronously by the customGrad call below
  const f = tf.customGrad(((x: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
    save([x]);
    return {
      value: p.apply(x as tf.Tensor4D, draw),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        if (!surrogate) return [dy];
        // The surrogate's vector-Jacobian product at the saved input.
        return [tf.grad((z: tf.Tensor) => tf.sum(tf.mul(surrogate(z as tf.Tensor4D), dy)))(saved[0]!)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (x, d) => {
    draw = d;
    return f(x) as tf.Tensor4D;
  };
}

export interface DefendOptions {
  /** Draws averaged per call when a preprocessor is randomized (EOT). Default 8. */
  eot?: number;
}

export interface DefendedClassifier extends Classifier {
  readonly preprocessors: readonly Preprocessor[];
  /** How gradients pass each step, for reports: e.g. "median(3): BPDA (identity)". */
  describe(): string;
}

/** A Classifier that preprocesses its inputs; attacks see BPDA/EOT automatically. */
export function defend(model: Classifier, preprocessors: Preprocessor[], options: DefendOptions = {}): DefendedClassifier {
  check(Array.isArray(preprocessors) && preprocessors.length > 0, 'defend', () => `preprocessors must be a non-empty list, but got ${show(preprocessors)}.`);
  const eot = checkFiniteNumber('defend', 'eot', options.eot ?? 8, { integer: true, min: 1 });
  const noExact = preprocessors.find((p) => p.gradient === 'exact' && p.hasExactGradient === false);
  check(!noExact, 'defend', () => `${noExact!.name} has no exact gradient in TensorFlow.js (it sorts, and sorting has none); attack it with BPDA (gradient 'bpda', or --defense-gradient auto).`);
  const chain = preprocessors.map(withBackward);
  const randomized = preprocessors.some((p) => p.randomized) || model.randomized;
  const once = (x: tf.Tensor4D, draw: number) => model.logits(chain.reduce((v, f) => f(v, draw), x));
  // Described as data when the model and every preprocessor are, so a worker pool can build it.
  const specs = preprocessors.map((p) => p.spec);
  const source: ClassifierSource | undefined = model.source && specs.every((s) => s !== undefined)
    ? { ...model.source, wrappers: [...(model.source.wrappers ?? []), { module: import.meta.url, export: 'defendFromSpec', args: { preprocessors: specs, eot } }] }
    : undefined;
  const rule = (p: Preprocessor) => (p.gradient === 'exact' ? 'exact gradient' : p.gradient === 'bpda' ? 'BPDA (identity)' : 'BPDA (surrogate)');
  return {
    logits: (x) => tf.tidy(() => {
      if (!randomized || eot === 1) return once(x, 0);
      let sum = once(x, 0);
      for (let i = 1; i < eot; i++) sum = tf.add(sum, once(x, i));
      return tf.div(sum, eot) as tf.Tensor2D;
    }),
    bounds: model.bounds,
    numClasses: model.numClasses,
    inputShape: model.inputShape,
    randomized,
    warnings: model.warnings,
    preprocessors,
    ...(source ? { source } : {}),
    describe: () => `${preprocessors.map((p) => `${p.name}: ${rule(p)}`).join('; ')}${randomized ? `; EOT over ${eot} draws` : ''}`,
  };
}

/** `defend` from data: the wrapper a ClassifierSource records for a defended classifier. */
export function defendFromSpec(model: Classifier, args: { preprocessors: PreprocessorSpec[]; eot: number }): DefendedClassifier {
  return defend(model, args.preprocessors.map(preprocessorFromSpec), { eot: args.eot });
}
