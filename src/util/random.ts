/**
 * Seeded pseudo-random numbers. advkit never uses Math.random or the clock: every random
 * draw takes a seed, so the same seed gives the same bytes.
 */
import { checkFiniteNumber } from './errors.js';

/** A 32-bit generator (mulberry32): small, fast and good enough for shuffles and seeds. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    checkFiniteNumber('Rng', 'seed', seed, { integer: true });
    this.state = seed >>> 0;
  }
  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A positive seed for tfjs ops (tfjs treats seed 0 as "no seed"). */
  seed(): number {
    return (this.nextUint32() % 2147483646) + 1;
  }
}

/** Derives an independent seed from a seed and a list of integers (epoch, batch, restart...). */
/** A per-example (per-run, per-draw) seed from the run's seed: deriveSeed in [0, 2^31), the range every seeded op takes. */
export function seedFor(seed: number, ...parts: number[]): number {
  return deriveSeed(seed, ...parts) & 0x7fffffff;
}

export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A seeded Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
