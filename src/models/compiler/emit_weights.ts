/**
 * Weights laid out for the ONNX emitter (emit_onnx.ts): TF's HWIO filters as ONNX's OIHW (depthwise
 * [c·m, 1, kh, kw]), the flipped and transposed filter of a stride-1 input gradient, and inference
 * batch norm folded into the layer before it (in float64).
 */
import type { Node, Param } from './ir.js';

export const values = (p: Param): Float32Array => p.read().dataSync() as Float32Array;

/** [kh, kw, ci, co] HWIO (or depthwise [kh, kw, c, m]) → OIHW (depthwise [c·m, 1, kh, kw]). */
export function oihw(f: Float32Array, [kh, kw, ci, co]: number[], depthwise: boolean): Float32Array {
  const out = new Float32Array(f.length);
  for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) for (let i = 0; i < ci!; i++) for (let o = 0; o < co!; o++) {
    const src = ((y * kw! + x) * ci! + i) * co! + o;
    out[depthwise ? ((i * co! + o) * kh! + y) * kw! + x : ((o * ci! + i) * kh! + y) * kw! + x] = f[src]!;
  }
  return out;
}

/** The flipped, transposed filter whose stride-1 conv is the input gradient of OIHW `w` [o, i, kh, kw] in `groups`. */
export function flipped(w: Float32Array, [o, i, kh, kw]: number[], groups: number): { data: Float32Array; dims: number[] } {
  const og = o! / groups;
  const out = new Float32Array(w.length);
  // Output channel (of the gradient conv) g·i + ii reads input channel g·og + oo.
  for (let g = 0; g < groups; g++) for (let oo = 0; oo < og; oo++) for (let ii = 0; ii < i!; ii++) for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) {
    out[((((g * i! + ii) * og + oo) * kh! + y) * kw!) + x] = w[((((g * og + oo) * i! + ii) * kh! + (kh! - 1 - y)) * kw!) + (kw! - 1 - x)]!;
  }
  return { data: out, dims: [i! * groups, og, kh!, kw!] };
}

/** Scale and shift of an inference batch norm per channel, in float64. */
export function bnAffine(bn: NonNullable<Extract<Node['op'], { kind: 'batchnorm' }>['bn']>): { scale: Float64Array; shift: Float64Array } {
  const mean = values(bn.mean); const variance = values(bn.variance);
  const gamma = bn.gamma ? values(bn.gamma) : undefined; const beta = bn.beta ? values(bn.beta) : undefined;
  const scale = new Float64Array(mean.length); const shift = new Float64Array(mean.length);
  for (let c = 0; c < mean.length; c++) {
    scale[c] = (gamma ? gamma[c]! : 1) / Math.sqrt(variance[c]! + bn.epsilon);
    shift[c] = (beta ? beta[c]! : 0) - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

/** Bias (and folded batch norm) per output channel; `w` scaled in place, out-channel-major blocks of `per`. */
export function foldInto(w: Float32Array, per: number, bias: Float32Array | undefined, op: { bn?: Parameters<typeof bnAffine>[0] }, co: number, outerStride?: number): Float32Array {
  const b = new Float32Array(co);
  if (bias) b.set(bias);
  if (!op.bn) return b;
  const { scale, shift } = bnAffine(op.bn);
  for (let o = 0; o < co; o++) {
    if (outerStride === undefined) for (let j = 0; j < per; j++) w[o * per + j] = w[o * per + j]! * scale[o]!;
    else for (let r = 0; r < per; r++) w[r * outerStride + o] = w[r * outerStride + o]! * scale[o]!;
    b[o] = b[o]! * scale[o]! + shift[o]!;
  }
  return b;
}
