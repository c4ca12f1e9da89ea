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
 * - `minimum-norm`: the minimum-norm attacks of the run's norm, each run once over every
 *   clean-correct point, each example keeping the smallest distance any of them found: the
 *   robust-accuracy curve over every eps and the median distance, from one run. L∞: FMN,
 *   FAB-T, DeepFool; L2: FMN, Carlini–Wagner, DeepFool, FAB-T; L1: FMN, EAD; L0: FMN.
 *
 * Under L1 the standard preset has no Square (advkit's Square proposals are L∞ and L2), so an L1
 * figure from it is a partial evaluation.
 *
 * A report made with anything but `standard` (or `rand` for a randomized model) says its
 * figure is a partial evaluation (see `completeness`).
 */
import { attackNorms } from '../attacks/registry.js';
import type { NormName } from '../util/norms.js';
import type { AttackSpec } from './evaluate.js';

export const PRESET_NAMES = ['standard', 'rand', 'fast', 'minimum-norm'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** A preset: one list of attacks, or one per norm. */
export interface Preset { description: string; attacks: readonly AttackSpec[] | Readonly<Record<NormName, readonly AttackSpec[]>> }

export const PRESETS: Readonly<Record<PresetName, Preset>> = Object.freeze({
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
  'minimum-norm': {
    description: "the minimum-norm attacks of the run's norm, each example keeping its smallest distance (L∞: FMN, FAB-T, DeepFool; L2: FMN, Carlini–Wagner, DeepFool, FAB-T; L1: FMN, EAD; L0: FMN)",
    attacks: {
      linf: [
        { name: 'fmn', options: { steps: 100 } },
        { name: 'fab-t', options: { steps: 100, restarts: 1, targets: 9 } },
        { name: 'deepfool', options: { steps: 50 } },
      ],
      l2: [
        { name: 'fmn', options: { steps: 100 } },
        { name: 'cw', options: { steps: 100, binarySteps: 9 } },
        { name: 'deepfool', options: { steps: 50 } },
        { name: 'fab-t', options: { steps: 100, restarts: 1, targets: 9 } },
      ],
      l1: [
        { name: 'fmn', options: { steps: 100 } },
        { name: 'ead', options: { steps: 100, binarySteps: 9 } },
      ],
      l0: [{ name: 'fmn', options: { steps: 100 } }],
    },
  },
});

/** The preset's attacks under `norm`, as fresh specs the caller may change (attacks with no form for the norm left out). */
export function presetAttacks(name: PresetName, norm: NormName = 'linf'): AttackSpec[] {
  const a = PRESETS[name].attacks;
  const list = Array.isArray(a) ? (a as readonly AttackSpec[]) : (a as Record<NormName, readonly AttackSpec[]>)[norm];
  return list.filter((s) => attackNorms(s.name).includes(norm)).map((s) => ({ name: s.name, options: { ...(s.options ?? {}) } }));
}

/**
 * Whether a run is a complete evaluation: the `standard` preset for a deterministic model, or
 * `rand` for a randomized one, with its attacks unchanged.
 */
export function completeness(preset: PresetName | undefined, attacks: readonly AttackSpec[], randomized: boolean, norm: NormName = 'linf'): { complete: boolean; note: string } {
  const wanted: PresetName = randomized ? 'rand' : 'standard';
  const unchanged = preset !== undefined && JSON.stringify(presetAttacks(preset, norm)) === JSON.stringify(attacks.map((a) => ({ name: a.name, options: { ...(a.options ?? {}) } })));
  if (preset === 'standard' && !randomized && norm === 'l1') return { complete: false, note: "Partial evaluation: under L1 the standard preset runs without Square (AutoAttack's L1 version has an L1 Square and APGD's large-eps restarts, which advkit does not); its robust accuracy is an upper bound that a complete evaluation may lower." };
  if (preset === wanted && unchanged) return { complete: true, note: `Complete evaluation: the ${preset} preset (${PRESETS[preset].description}).` };
  const ran = preset ? `the ${preset} preset${unchanged ? '' : ' with changed attacks'}` : `the attacks ${attacks.map((a) => a.name).join(', ')}`;
  return { complete: false, note: `Partial evaluation: this run used ${ran}, not the ${wanted} preset${randomized ? ' (the model is randomized)' : ''}; its robust accuracy is an upper bound that a complete evaluation may lower.` };
}
