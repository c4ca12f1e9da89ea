/**
 * The names of the Lp threat models and what follows from a name alone, with no tensors, so
 * reports, gates and the CLI's checks can read them (the geometry is attacks/lp.ts).
 */
export const NORM_NAMES = ['linf', 'l2', 'l1'] as const;
export type NormName = (typeof NORM_NAMES)[number];

/** How a norm is written for people. */
export const NORM_LABELS: Readonly<Record<NormName, string>> = Object.freeze({ linf: 'L∞', l2: 'L2', l1: 'L1' });

export function isNormName(v: unknown): v is NormName {
  return typeof v === 'string' && (NORM_NAMES as readonly string[]).includes(v);
}

/** The largest distance two images of `dim` values in a box of width `range` can be apart. */
export function diameter(norm: NormName, range: number, dim: number): number {
  return norm === 'linf' ? range : norm === 'l2' ? range * Math.sqrt(dim) : range * dim;
}
