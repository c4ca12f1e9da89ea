import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { attackDataset, pgd } from '../../src/attacks/index.js';
import { ATTACK_OPTION_NAMES } from '../../src/attacks/gradient_descent.js';
import { ATTACK_NAMES, ATTACK_REGISTRY, attacksTaking, checkAttackOptions, COMMON_ATTACK_OPTIONS, GOAL_ATTACKS, GRADIENT_ATTACKS, MINIMUM_NORM_ATTACKS } from '../../src/attacks/registry.js';
import { PRESET_NAMES, presetAttacks } from '../../src/eval/presets.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { take, loadMnist } from '../../src/data/index.js';
import { buildArchitecture } from '../../src/models/architectures.js';
import { fromLayersModel } from '../../src/models/classifier.js';
import { useBackend } from '../helpers.js';
import { NORM_NAMES } from '../../src/util/norms.js';

describe('the attack registry', () => {
  beforeAll(() => useBackend('wasm'));

  it('describes every attack consistently: defaults only for options it reads, every option one the attacks validate', () => {
    for (const name of ATTACK_NAMES) {
      const e = ATTACK_REGISTRY[name];
      for (const k of Object.keys(e.defaults)) expect(e.options, `${name}.${k}`).toContain(k);
      for (const k of e.options) expect(ATTACK_OPTION_NAMES, `${name}.${k}`).toContain(k);
      expect(new Set(e.options).size).toBe(e.options.length);
    }
    // The union of what the registry lists is exactly what the attacks accept.
    const union = new Set([...COMMON_ATTACK_OPTIONS, ...ATTACK_NAMES.flatMap((n) => ATTACK_REGISTRY[n].options)]);
    expect([...union].sort()).toEqual([...ATTACK_OPTION_NAMES].sort());
    expect(GRADIENT_ATTACKS).not.toContain('square');
    expect(MINIMUM_NORM_ATTACKS).toEqual(['fab-t', 'deepfool', 'cw', 'ead', 'fmn']);
    expect(GOAL_ATTACKS).toEqual(attacksTaking('goal'));
    // The presets only use options their attacks read.
    for (const p of PRESET_NAMES) for (const norm of NORM_NAMES) for (const a of presetAttacks(p, norm)) expect(() => checkAttackOptions('preset', a.name, a.options)).not.toThrow();
  });

  it('the evaluator refuses an option its attack does not read, naming the attacks that do', async () => {
    const model = fromLayersModel(buildArchitecture('mlp', { seed: 1 }));
    const ds = take(loadMnist('test'), 4);
    await expect(evaluateRobustness(model, ds, { attacks: [{ name: 'square', options: { steps: 10 } }], epsilons: [0.1], checks: false })).rejects.toThrow(/square has no option "steps": square counts queries, not steps; the attacks that do: bim, pgd.*Its options: eps, norm, seed, queries, pInit, rescaleSchedule\./);
    await expect(evaluateRobustness(model, ds, { attacks: [{ name: 'pgd', options: { stpes: 10 } }], epsilons: [0.1], checks: false })).rejects.toThrow(/pgd has no option "stpes"/);
  });

  it('attackDataset takes an attack by name, with the bytes of the function; an unknown name is refused', async () => {
    const model = fromLayersModel(buildArchitecture('mlp', { seed: 2 }));
    const ds = take(loadMnist('test'), 10);
    const run = async (attack: 'pgd' | typeof pgd) => {
      const out: number[] = [];
      for await (const b of attackDataset(attack, model, ds, { eps: 0.1, steps: 3, seed: 4 }, { batchSize: 4 })) {
        out.push(...(await b.result.adversarial.data()));
        tf.dispose([b.x, b.result.adversarial]);
      }
      return out;
    };
    expect(await run('pgd')).toEqual(await run(pgd));
    const drain = async () => { for await (const b of attackDataset('jsma' as never, model, ds, { eps: 0.1 })) tf.dispose([b.x, b.result.adversarial]); };
    await expect(drain()).rejects.toThrow(/unknown attack "jsma"; use one of fgsm, bim/);
  });
});
