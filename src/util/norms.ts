/**
 * The names of the threat models (Lp norms, and L0: how many values change) and what follows from a name alone, with no tensors, so
 * reports, gates and the CLI's checks can read them (the geometry is attacks/lp.ts).
 */
export const NORM_NAMES = ['linf', 'l2', 'l1', 'l0'] as const;
export type NormName = (typeof NORM_NAMES)[number];

/** How a norm is written for people. */
export const NORM_LABELS: Readonly<Record<NormName, string>> = Object.freeze({ linf: 'L∞', l2: 'L2', l1: 'L1', l0: 'L0' });

/** The norms every Lp attack runs under (L0, a count of changed values, only some: the registry says which). */
export const LP_NORMS: readonly NormName[] = ['linf', 'l2', 'l1'];

/** Norms that reports written before they existed lack (optional in records and manifests). */
export const LATER_NORMS = ['l1', 'l0'] as const;

export function isNormName(v: unknown): v is NormName {
  return typeof v === 'string' && (NORM_NAMES as readonly string[]).includes(v);
}

/** The largest distance two images of `dim` values in a box of width `range` can be apart. */
export function diameter(norm: NormName, range: number, dim: number): number {
  return norm === 'linf' ? range : norm === 'l2' ? range * Math.sqrt(dim) : norm === 'l1' ? range * dim : dim;
}
