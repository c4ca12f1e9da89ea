/**
 * Epsilon sweeps, as Foolbox does them: one call, many epsilons, a success matrix
 * (epsilons x samples) and the adversarial batch per epsilon. Results are re-projected onto
 * each eps-ball and the bounds and re-checked against the model rather than trusted.
 */
import * as tf from '@tensorflow/tfjs';
import type { Classifier } from '../models/classifier.js';
import { check, checkFiniteNumber } from '../util/errors.js';
import { goalMet, type Attack, type AttackResult, type GradientAttackOptions } from './gradient_descent.js';
import { NORMS } from './lp.js';
import { labelsToArray, type Labels } from './targets.js';

export interface SweepResult {
  epsilons: number[];
  /** success[i][j]: sample j meets the goal at epsilons[i]. */
  success: Uint8Array[];
  /** Fraction of samples that do not meet the goal, per epsilon (robust accuracy when every sample starts correctly classified). */
  robustAccuracy: number[];
  /** The adversarial batch per epsilon (caller disposes). */
  adversarials: tf.Tensor4D[];
  /** The attacks' own results (adversarial tensors are the same objects as above). */
  results: AttackResult[];
}

type AnyAttack = Attack<GradientAttackOptions>;

export async function sweep<O extends Partial<GradientAttackOptions>>(attack: Attack<O>, model: Classifier, x: tf.Tensor4D, y: Labels, options: Omit<O, 'eps'> & { epsilons: readonly number[] }): Promise<SweepResult> {
  const { epsilons, ...restOptions } = options;
  const rest = restOptions as unknown as Partial<GradientAttackOptions>;
  check(Array.isArray(epsilons) && epsilons.length > 0, 'sweep', () => 'epsilons must be a non-empty array of numbers.');
  const norm = NORMS[rest.norm ?? 'linf'];
  const goal = rest.goal;
  const isTargeted = goal?.kind === 'targeted';
  epsilons.forEach((e, i) => checkFiniteNumber('sweep', `epsilons[${i}]`, e, { min: 0 }));
  const goalLabels = tf.tensor1d(isTargeted && goal?.kind === 'targeted' ? labelsToArray(goal.labels, 'sweep') : labelsToArray(y, 'sweep'), 'int32');
  const out: SweepResult = { epsilons: [...epsilons], success: [], robustAccuracy: [], adversarials: [], results: [] };
  try {
    for (const eps of epsilons) {
      const r = await (attack as unknown as AnyAttack)(model, x, y, { ...rest, eps });
      // Re-project and re-check instead of trusting the attack.
      let checked: { adv: tf.Tensor4D; success: tf.Tensor };
      try {
        checked = tf.tidy(() => {
          const adv = norm.project(r.adversarial, x, eps, model.bounds);
          return { adv, success: goalMet(model.logits(adv), goalLabels, isTargeted) };
        });
      } finally {
        r.adversarial.dispose();
      }
      r.adversarial = checked.adv;
      const success = Uint8Array.from(await checked.success.data());
      checked.success.dispose();
      r.success = success;
      out.success.push(success);
      out.robustAccuracy.push(1 - success.reduce((a, b) => a + b, 0) / success.length);
      out.adversarials.push(checked.adv);
      out.results.push(r);
    }
  } catch (err) {
    tf.dispose(out.adversarials);
    throw err;
  } finally {
    goalLabels.dispose();
  }
  return out;
}
