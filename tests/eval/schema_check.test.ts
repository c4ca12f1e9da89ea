import { describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import * as tf from '@tensorflow/tfjs';
import { makeDataset } from '../../src/data/dataset.js';
import { evaluateRobustness } from '../../src/eval/evaluate.js';
import { REPORT_JSON_SCHEMA } from '../../src/eval/report.js';
import { schemaProblem } from '../../src/eval/schema_check.js';
import { fromLayersModel } from '../../src/models/classifier.js';
import { uniform, useBackend } from '../helpers.js';

describe('the runtime report check agrees with a full JSON Schema validator', () => {
  it('valid reports (whole and shard) pass both; each corruption fails both', async () => {
    await useBackend('wasm');
    const net = tf.sequential({ layers: [tf.layers.flatten({ inputShape: [4, 4, 1] }), tf.layers.dense({ units: 3 })] });
    const ds = makeDataset('s', uniform(6 * 16, 1, 0, 1), Int32Array.from([0, 1, 2, 0, 1, 2]), [4, 4, 1], ['a', 'b', 'c']);
    const whole = (await evaluateRobustness(fromLayersModel(net), ds, { attacks: [{ name: 'fgsm' }, { name: 'fab-t', options: { steps: 3 } }], epsilons: [0, 0.2], checksLimit: 6 })).report;
    const shard = (await evaluateRobustness(fromLayersModel(net), ds, { attacks: [{ name: 'fgsm' }], epsilons: [0.2], shard: { index: 1, count: 2 }, checks: false })).report;
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(REPORT_JSON_SCHEMA);
    for (const r of [whole, shard]) {
      expect(validate(JSON.parse(JSON.stringify(r))), JSON.stringify(validate.errors)).toBe(true);
      expect(schemaProblem(JSON.parse(JSON.stringify(r)), REPORT_JSON_SCHEMA as Record<string, unknown>)).toBeUndefined();
    }
    const corruptions: Array<[string, (r: Record<string, any>) => void]> = [
      ['seed as a string', (r) => { r.config.seed = '<img src=x>'; }],
      ['accuracy above 1', (r) => { r.cleanAccuracy = 1.5; }],
      ['missing results', (r) => { delete r.results; }],
      ['an unknown top-level field', (r) => { r.injected = true; }],
      ['a bad digest', (r) => { r.provenance.model = { sha256: 'zz', files: {} }; }],
      ['a wrong schema id', (r) => { r.schema = 'other'; }],
      ['eps as a string', (r) => { r.results[0].eps = '0'; }],
      ['output kind unknown', (r) => { r.model.output = { kind: 'raw', detail: 'x' }; }],
    ];
    for (const [what, corrupt] of corruptions) {
      const r = JSON.parse(JSON.stringify(whole));
      corrupt(r);
      expect(validate(r), what).toBe(false);
      expect(schemaProblem(r, REPORT_JSON_SCHEMA as Record<string, unknown>), what).toMatch(/^at \//);
    }
    net.dispose();
  });
});
