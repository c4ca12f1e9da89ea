/** Attacks by name, for the CLI, configs and the evaluator. */
import type * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { apgd, apgdT } from './apgd.js';
import { bim } from './bim.js';
import { fabT } from './fab.js';
import { fgsm } from './fgsm.js';
import type { AttackResult } from './gradient_descent.js';
import { mifgsm } from './mifgsm.js';
import { pgd } from './pgd.js';
import { square } from './square.js';
import type { Labels } from './targets.js';

export type AnyAttackFn = (model: Classifier, x: tf.Tensor4D, y: Labels, options: { eps: number } & Record<string, unknown>) => Promise<AttackResult>;

const apgdWith = (loss: 'ce' | 'dlr'): AnyAttackFn => (model, x, y, options) => apgd(model, x, y, { ...options, loss } as never);

export const ATTACKS: Readonly<Record<'fgsm' | 'bim' | 'pgd' | 'mifgsm' | 'apgd-ce' | 'apgd-dlr' | 'apgd-t' | 'fab-t' | 'square', AnyAttackFn>> = Object.freeze({
  fgsm: fgsm as unknown as AnyAttackFn,
  bim: bim as unknown as AnyAttackFn,
  pgd: pgd as unknown as AnyAttackFn,
  mifgsm: mifgsm as unknown as AnyAttackFn,
  'apgd-ce': apgdWith('ce'),
  'apgd-dlr': apgdWith('dlr'),
  'apgd-t': apgdT as unknown as AnyAttackFn,
  'fab-t': fabT as unknown as AnyAttackFn,
  square: square as unknown as AnyAttackFn,
});
export type AttackName = keyof typeof ATTACKS;
export const ATTACK_NAMES = Object.keys(ATTACKS) as AttackName[];
/** Attacks that follow gradients (square is gradient-free). */
export const GRADIENT_ATTACKS: readonly AttackName[] = ['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd-ce', 'apgd-dlr', 'apgd-t', 'fab-t'];
/** Attacks that report each sample's minimum adversarial distance (eps-independent). */
export const MINIMUM_NORM_ATTACKS: readonly AttackName[] = ['fab-t'];
/** Attacks that take a targeted goal (the others pick their own targets or are untargeted). */
export const GOAL_ATTACKS: readonly AttackName[] = ['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd-ce', 'apgd-dlr'];
