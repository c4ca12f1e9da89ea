import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { Rng } from '../src/util/random.js';

/** Switches to a backend (wasm with advkit's kernels registered). */
export async function useBackend(name: 'wasm' | 'cpu'): Promise<void> {
  await initBackend(name);
}

/** Seeded uniform values in [lo, hi). */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

/** Max |a-b| / max(1, max|b|): the relative error used by the parity tests. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) diff = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

/** Runs `fn` on a backend and returns its outputs as plain arrays. */
export async function onBackend(name: 'wasm' | 'cpu', fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await useBackend(name);
  const outs = tf.tidy(fn);
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return data;
}

export { tf };
