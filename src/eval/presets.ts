/**
 * Fixed attack ensembles, so a robustness figure means the same thing from run to run and
 * can be compared with published ones:
 *
 * - `standard`: AutoAttack's standard version (Croce & Hein 2020, arXiv:2003.01690) — APGD-CE
 *   (100 steps), APGD-T (targeted DLR over the 9 most likely wrong classes, 100 steps each),
 *   FAB-T (9 targets, 100 steps each) and Square (5,000 queries, p_init 0.8), in cascade. The
 *   figure to report for a deterministic model.
 * - `rand`: AutoAttack's version for randomized models and defenses — APGD-CE and APGD-DLR,
 *   each averaging the gradient over 20 draws (EOT) per step.
 * - `fast`: a cheap ensemble for CI gates (APGD-CE and APGD-T over 3 targets, 25 steps each;
 *   Square with 500 queries). Its figure is a partial evaluation.
 *
 * A report made with anything but `standard` (or `rand` for a randomized model) says its
 * figure is a partial evaluation (see `completeness`).
 */
import type { AttackSpec } from './evaluate.js';

export const PRESET_NAMES = ['standard', 'rand', 'fast'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PRESETS: Readonly<Record<PresetName, { description: string; attacks: readonly AttackSpec[] }>> = Object.freeze({
  standard: {
    description: "AutoAttack's standard ensemble: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5,000 queries), in cascade",
    attacks: [
      { name: 'apgd-ce', options: { steps: 100, restarts: 1 } },
      { name: 'apgd-t', options: { steps: 100, restarts: 1, targets: 9 } },
      { name: 'fab-t', options: { steps: 100, restarts: 1, targets: 9 } },
      { name: 'square', options: { queries: 5000, pInit: 0.8, rescaleSchedule: false } },
    ],
  },
  rand: {
    description: "AutoAttack's ensemble for randomized models: APGD-CE and APGD-DLR with EOT over 20 draws",
    attacks: [
      { name: 'apgd-ce', options: { steps: 100, restarts: 1, eot: 20 } },
      { name: 'apgd-dlr', options: { steps: 100, restarts: 1, eot: 20 } },
    ],
  },
  fast: {
    description: 'a quick ensemble for CI: APGD-CE, APGD-T (3 targets), 25 steps each, and Square (500 queries)',
    attacks: [
      { name: 'apgd-ce', options: { steps: 25, restarts: 1 } },
      { name: 'apgd-t', options: { steps: 25, restarts: 1, targets: 3 } },
      { name: 'square', options: { queries: 500, pInit: 0.8 } },
    ],
  },
});

/** The preset's attacks, as fresh specs the caller may change. */
export function presetAttacks(name: PresetName): AttackSpec[] {
  return PRESETS[name].attacks.map((a) => ({ name: a.name, options: { ...(a.options ?? {}) } }));
}

/**
 * Whether a run is a complete evaluation: the `standard` preset for a deterministic model, or
 * `rand` for a randomized one, with its attacks unchanged.
 */
export function completeness(preset: PresetName | undefined, attacks: readonly AttackSpec[], randomized: boolean): { complete: boolean; note: string } {
  const wanted: PresetName = randomized ? 'rand' : 'standard';
  const unchanged = preset !== undefined && JSON.stringify(presetAttacks(preset)) === JSON.stringify(attacks.map((a) => ({ name: a.name, options: { ...(a.options ?? {}) } })));
  if (preset === wanted && unchanged) return { complete: true, note: `Complete evaluation: the ${preset} preset (${PRESETS[preset].description}).` };
  const ran = preset ? `the ${preset} preset${unchanged ? '' : ' with changed attacks'}` : `the attacks ${attacks.map((a) => a.name).join(', ')}`;
  return { complete: false, note: `Partial evaluation: this run used ${ran}, not the ${wanted} preset${randomized ? ' (the model is randomized)' : ''}; its robust accuracy is an upper bound that a complete evaluation may lower.` };
}
