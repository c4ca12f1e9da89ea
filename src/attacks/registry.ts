/**
 * The attacks by name: what each one is, which options it reads and their defaults. The CLI's
 * flags, the evaluator's checks of an attack spec, the presets and the worker pool all derive
 * from this one table.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { APGD_DEFAULTS, APGDT_DEFAULTS, apgd, apgdT } from './apgd.js';
import { BIM_DEFAULTS, bim } from './bim.js';
import { CW_DEFAULTS, cw } from './cw.js';
import { DEEPFOOL_DEFAULTS, deepfool } from './deepfool.js';
import { EAD_DEFAULTS, ead } from './ead.js';
import { FMN_DEFAULTS, fmn } from './fmn.js';
import { FAB_DEFAULTS, fabT } from './fab.js';
import { FGSM_DEFAULTS, fgsm } from './fgsm.js';
import type { AttackResult } from './gradient_descent.js';
import { MIFGSM_DEFAULTS, mifgsm } from './mifgsm.js';
import { PGD_DEFAULTS, pgd } from './pgd.js';
import { SQUARE_DEFAULTS, square } from './square.js';
import type { Labels } from './targets.js';
import { check, show } from '../util/errors.js';
import { LP_NORMS, NORM_NAMES, type NormName } from '../util/norms.js';

export type AnyAttackFn = (model: Classifier, x: tf.Tensor4D, y: Labels, options: { eps: number } & Record<string, unknown>) => Promise<AttackResult>;

/** Options every attack reads. */
export const COMMON_ATTACK_OPTIONS = ['eps', 'norm', 'seed'] as const;

export interface AttackEntry {
  readonly run: AnyAttackFn;
  /** One line for help texts. */
  readonly summary: string;
  /** The options it reads besides eps, norm and seed. */
  readonly options: readonly string[];
  /** Its defaults for them (an option without one is off unless given). */
  readonly defaults: Readonly<Record<string, unknown>>;
  /** Follows gradients (square does not). */
  readonly gradient: boolean;
  /** Reports each example's minimum adversarial distance, independent of eps. */
  readonly minimumNorm: boolean;
  /** The threat models it runs under (default: the Lp norms, L∞, L2 and L1). */
  readonly norms?: readonly NormName[];
  /** Why an option is not among its own, after the attack's name, where the reason helps (fgsm's steps). */
  readonly notes?: Readonly<Partial<Record<string, string>>>;
}

const LOOP = ['steps', 'relStepSize', 'absStepSize', 'loss', 'goal', 'earlyStop', 'eot'];
const OWN_STEPS = 'sets its own step sizes';
const OWN_TARGETS = 'picks its own target classes';
const apgdWith = (loss: 'ce' | 'dlr'): AnyAttackFn => (model, x, y, options) => apgd(model, x, y, { ...options, loss } as never);
const UNTARGETED_ONLY = 'is untargeted';
const strip = (defaults: Record<string, unknown>, ...drop: string[]) => Object.fromEntries(Object.entries(defaults).filter(([k]) => !(COMMON_ATTACK_OPTIONS as readonly string[]).includes(k) && !drop.includes(k)));

export const ATTACK_REGISTRY = Object.freeze({
  fgsm: {
    run: fgsm as unknown as AnyAttackFn, summary: 'one signed-gradient step of size eps (Goodfellow et al. 2015)',
    options: ['randomStart', 'loss', 'goal', 'eot'], defaults: strip(FGSM_DEFAULTS), gradient: true, minimumNorm: false,
    notes: { steps: 'takes one full step of size eps', relStepSize: 'takes one full step of size eps', absStepSize: 'takes one full step of size eps' },
  },
  bim: { run: bim as unknown as AnyAttackFn, summary: 'iterated FGSM from the clean point (Kurakin et al. 2017)', options: LOOP, defaults: strip(BIM_DEFAULTS), gradient: true, minimumNorm: false },
  pgd: { run: pgd as unknown as AnyAttackFn, summary: 'projected gradient descent with a random start (Madry et al. 2018)', options: [...LOOP, 'randomStart', 'restarts'], defaults: strip(PGD_DEFAULTS), gradient: true, minimumNorm: false },
  mifgsm: { run: mifgsm as unknown as AnyAttackFn, summary: 'momentum iterative FGSM (Dong et al. 2018)', options: [...LOOP, 'momentum'], defaults: strip(MIFGSM_DEFAULTS), gradient: true, minimumNorm: false },
  'apgd-ce': {
    run: apgdWith('ce'), summary: 'APGD on cross-entropy, step size adapted (Croce & Hein 2020)',
    options: ['steps', 'restarts', 'rho', 'goal', 'eot'], defaults: strip(APGD_DEFAULTS, 'loss'), gradient: true, minimumNorm: false,
    notes: { relStepSize: OWN_STEPS, absStepSize: OWN_STEPS, loss: 'optimises cross-entropy (apgd-dlr the DLR loss)' },
  },
  'apgd-dlr': {
    run: apgdWith('dlr'), summary: 'APGD on the DLR loss (Croce & Hein 2020)',
    options: ['steps', 'restarts', 'rho', 'goal', 'eot'], defaults: strip(APGD_DEFAULTS, 'loss'), gradient: true, minimumNorm: false,
    notes: { relStepSize: OWN_STEPS, absStepSize: OWN_STEPS, loss: 'optimises the DLR loss (apgd-ce cross-entropy)' },
  },
  'apgd-t': {
    run: apgdT as unknown as AnyAttackFn, summary: 'targeted APGD on DLR over the most likely wrong classes (Croce & Hein 2020)',
    options: ['steps', 'restarts', 'rho', 'targets', 'eot'], defaults: strip(APGDT_DEFAULTS), gradient: true, minimumNorm: false,
    notes: { relStepSize: OWN_STEPS, absStepSize: OWN_STEPS, goal: OWN_TARGETS, loss: 'optimises the targeted DLR loss' },
  },
  'fab-t': {
    run: fabT as unknown as AnyAttackFn, summary: 'targeted FAB, minimum-norm (Croce & Hein 2020)',
    options: ['steps', 'restarts', 'targets', 'alphaMax', 'eta', 'beta'], defaults: strip(FAB_DEFAULTS), gradient: true, minimumNorm: true,
    notes: { relStepSize: OWN_STEPS, absStepSize: OWN_STEPS, goal: OWN_TARGETS },
  },
  deepfool: {
    run: deepfool as unknown as AnyAttackFn, summary: 'DeepFool, minimum-norm, to the nearest linearized boundary (Moosavi-Dezfooli et al. 2016)',
    options: ['steps', 'candidates', 'overshoot'], defaults: strip(DEEPFOOL_DEFAULTS), gradient: true, minimumNorm: true,
    notes: { relStepSize: OWN_STEPS, absStepSize: OWN_STEPS, goal: UNTARGETED_ONLY },
  },
  cw: {
    run: cw as unknown as AnyAttackFn, summary: 'Carlini–Wagner L2, minimum-norm, Adam in tanh space (Carlini & Wagner 2017)',
    options: ['steps', 'binarySteps', 'initialConst', 'confidence', 'learningRate', 'abortEarly', 'goal'], defaults: strip(CW_DEFAULTS), gradient: true, minimumNorm: true, norms: ['l2'],
    notes: { relStepSize: 'sets its steps with learningRate', absStepSize: 'sets its steps with learningRate' },
  },
  ead: {
    run: ead as unknown as AnyAttackFn, summary: 'EAD, elastic-net L1 minimum-norm by FISTA (Chen et al. 2018)',
    options: ['steps', 'binarySteps', 'initialConst', 'beta', 'learningRate', 'confidence', 'decisionRule', 'goal'], defaults: strip(EAD_DEFAULTS), gradient: true, minimumNorm: true, norms: ['l1'],
    notes: { relStepSize: 'sets its steps with learningRate', absStepSize: 'sets its steps with learningRate' },
  },
  fmn: {
    run: fmn as unknown as AnyAttackFn, summary: 'Fast Minimum-Norm, adaptive-radius projected steps (Pintor et al. 2021)',
    options: ['steps', 'maxStepSize', 'minStepSize', 'gamma', 'goal'], defaults: strip(FMN_DEFAULTS), gradient: true, minimumNorm: true, norms: NORM_NAMES,
    notes: { relStepSize: 'sets its steps with maxStepSize and minStepSize', absStepSize: 'sets its steps with maxStepSize and minStepSize' },
  },
  square: {
    run: square as unknown as AnyAttackFn, summary: 'Square Attack, random search without gradients (Andriushchenko et al. 2020)',
    options: ['queries', 'pInit', 'rescaleSchedule'], defaults: strip(SQUARE_DEFAULTS), gradient: false, minimumNorm: false, norms: ['linf', 'l2'],
    notes: { steps: 'counts queries, not steps', goal: UNTARGETED_ONLY },
  },
} satisfies Record<string, AttackEntry>);

export type AttackName = keyof typeof ATTACK_REGISTRY;
export const ATTACK_NAMES = Object.keys(ATTACK_REGISTRY) as AttackName[];
const entries = () => Object.entries(ATTACK_REGISTRY) as Array<[AttackName, AttackEntry]>;

/** The attack functions by name. */
export const ATTACKS: Readonly<Record<AttackName, AnyAttackFn>> = Object.freeze(Object.fromEntries(entries().map(([n, e]) => [n, e.run])) as Record<AttackName, AnyAttackFn>);
/** Attacks that follow gradients (square is gradient-free). */
export const GRADIENT_ATTACKS: readonly AttackName[] = entries().filter(([, e]) => e.gradient).map(([n]) => n);
/** Attacks that report each sample's minimum adversarial distance (eps-independent). */
export const MINIMUM_NORM_ATTACKS: readonly AttackName[] = entries().filter(([, e]) => e.minimumNorm).map(([n]) => n);
/** Attacks that take a targeted goal (the others pick their own targets or are untargeted). */
export const GOAL_ATTACKS: readonly AttackName[] = attacksTaking('goal');

/** The norms `name` runs under. */
export function attackNorms(name: AttackName): readonly NormName[] {
  return (ATTACK_REGISTRY[name] as AttackEntry).norms ?? LP_NORMS;
}

/** Why `name` cannot run under `norm` (a sentence naming the attacks that can), or undefined when it can. */
export function normRefusal(name: AttackName, norm: NormName): string | undefined {
  if (attackNorms(name).includes(norm)) return undefined;
  return `${name} runs under ${attackNorms(name).join(' or ')} only, not ${norm}; the attacks for ${norm}: ${ATTACK_NAMES.filter((n) => attackNorms(n).includes(norm)).join(', ')}.`;
}

/** True when `name` reads `option`. */
export function takesOption(name: AttackName, option: string): boolean {
  return (COMMON_ATTACK_OPTIONS as readonly string[]).includes(option) || (ATTACK_REGISTRY[name] as AttackEntry).options.includes(option);
}

/** The attacks that read `option`. */
export function attacksTaking(option: string): AttackName[] {
  return ATTACK_NAMES.filter((n) => takesOption(n, option));
}

/**
 * Why `name` refuses `option`, as a sentence naming the attacks that take it; undefined when it
 * takes it. `label` is how the caller calls the option (a flag, or the option's own name).
 */
export function optionRefusal(name: AttackName, option: string, label = option): string | undefined {
  if (takesOption(name, option)) return undefined;
  const note = (ATTACK_REGISTRY[name] as AttackEntry).notes?.[option];
  return `${name} ${note ?? `does not take ${label}`}; the attacks that do: ${attacksTaking(option).join(', ')}.`;
}

/** Refuses attack options the attack does not read (a typo or a misplaced option would be ignored). */
export function checkAttackOptions(fn: string, name: AttackName, options: Record<string, unknown> | undefined): void {
  check(options === undefined || (typeof options === 'object' && options !== null && !Array.isArray(options)), fn, () => `the options of ${name} must be an object, but got ${show(options)}.`);
  for (const k of Object.keys(options ?? {})) {
    const why = optionRefusal(name, k);
    check(why === undefined, fn, () => `${name} has no option ${JSON.stringify(k)}: ${why!} Its options: ${[...COMMON_ATTACK_OPTIONS, ...(ATTACK_REGISTRY[name] as AttackEntry).options].join(', ')}.`);
  }
}
