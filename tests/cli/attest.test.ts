/**
 * Signed robustness results: eval --attest writes in-toto Statements v1 in DSSE envelopes about
 * the model's files; advkit verify accepts exactly that model and refuses any change to it, to
 * the figures, the key or the envelope; the CycloneDX 1.6 BOM validates against the schema.
 */
import { generateKeyPairSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as CDX from '@cyclonedx/cyclonedx-library';
import { ROBUSTNESS_PREDICATE, STATEMENT_TYPE, TEST_RESULT_PREDICATE, wilson } from '../../src/eval/attest.js';
import { writeNpy } from '../../src/data/npy.js';
import { uniform } from '../helpers.js';
import { advkit, expectUsageError, tempDirWithModel } from './run.js';

let dir: string;
let model: string;
let data: string;
const keys: Record<'ed25519' | 'p256' | 'other', { priv: string; pub: string }> = {} as never;
const at = (...p: string[]) => path.join(dir, ...p);

beforeAll(async () => {
  ({ dir, model } = await tempDirWithModel('advkit-attest-', 'mlp', 4));
  await writeNpy(at('x.npy'), uniform(8 * 784, 2, 0, 1), [8, 28, 28, 1]);
  await writeNpy(at('y.npy'), Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), [8]);
  data = `npy:${at('x.npy')},${at('y.npy')}`;
  const pem = (kp: ReturnType<typeof generateKeyPairSync>) => ({ priv: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, pub: kp.publicKey.export({ type: 'spki', format: 'pem' }) as string });
  keys.ed25519 = pem(generateKeyPairSync('ed25519'));
  keys.p256 = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  keys.other = pem(generateKeyPairSync('ed25519'));
  for (const [k, v] of Object.entries(keys)) {
    await fsp.writeFile(at(`${k}.pem`), v.priv);
    await fsp.writeFile(at(`${k}.pub.pem`), v.pub);
  }
});

const evalArgs = (out: string, key: string, extra: string[] = []) => ['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0,0.1', '--no-checks', '--out', out, '--attest', key, ...extra];
const verify = (attestation: string, m: string, key: string, extra: string[] = []) => advkit(['verify', '--attestation', attestation, '--model', m, '--key', key, ...extra]);

describe('attestations and verify', () => {
  it('the Wilson interval matches its closed form', () => {
    // p = 0.5, n = 100: 0.5 ± 1.96·sqrt(0.25/100 + 1.96²/40000) / (1 + 1.96²/100).
    const [lo, hi] = wilson(0.5, 100);
    expect(lo).toBeCloseTo(0.4038, 4);
    expect(hi).toBeCloseTo(0.5962, 4);
    expect(wilson(0, 10)[0]).toBe(0);
    expect(wilson(1, 10)[1]).toBeCloseTo(1, 12);
    expect(wilson(0.5, 0)).toEqual([0, 1]);
  });

  it('eval --attest signs statements whose subjects are the model files; verify accepts that model (Ed25519 and P-256)', async () => {
    for (const k of ['ed25519', 'p256'] as const) {
      const out = at(`report-${k}`);
      const r = advkit(evalArgs(out, at(`${k}.pem`), ['--assert', 'clean>=0', '--bom', at(`bom-${k}.json`)]));
      expect(r.code, r.stderr).toBe(0);
      const lines = (await fsp.readFile(path.join(out, 'attestation.intoto.jsonl'), 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(2);
      const statements = lines.map((l) => JSON.parse(Buffer.from(JSON.parse(l).payload, 'base64').toString('utf8')));
      // in-toto Statement v1: _type, subjects with sha256 digests, a predicate type URI.
      for (const st of statements) {
        expect(st._type).toBe(STATEMENT_TYPE);
        expect(st.subject.map((s: { name: string }) => s.name).sort()).toEqual(['advkit.json', 'model.json', 'weights.bin']);
        for (const s of st.subject) expect(s.digest.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(st.predicateType).toMatch(/^(https:|urn:)/);
      }
      expect(statements.map((s) => s.predicateType)).toEqual([TEST_RESULT_PREDICATE, ROBUSTNESS_PREDICATE]);
      expect(statements[0].predicate.result).toBe('PASSED');
      expect(statements[0].predicate.passedTests).toEqual(['clean>=0']);
      // The figures with 95% Wilson intervals over the 8 examples, and the gates judged.
      const conf = statements[1].predicate.confidence;
      expect(conf.examples).toBe(8);
      const [lo, hi] = conf.clean;
      expect(lo).toBeLessThanOrEqual(statements[1].predicate.report.cleanAccuracy);
      expect(hi).toBeGreaterThanOrEqual(statements[1].predicate.report.cleanAccuracy);
      expect(hi - lo).toBeGreaterThan(0.2);
      expect(statements[1].predicate.gates).toEqual([expect.objectContaining({ name: 'clean>=0', passed: true })]);
      const v = verify(path.join(out, 'attestation.intoto.jsonl'), model, at(`${k}.pub.pem`), ['--assert', 'fgsm@0.1>=0']);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toMatch(/verified: 3 files of .* are the attested .*; attested verdict PASSED/);
    }
  });

  it('the BOM is CycloneDX 1.6 JSON, valid against the schema, the model a machine-learning-model with its metrics and the attestation referenced', async () => {
    const bom = JSON.parse(await fsp.readFile(at('bom-ed25519.json'), 'utf8'));
    const errors = await new CDX.Validation.JsonStrictValidator(CDX.Spec.Version.v1dot6).validate(JSON.stringify(bom));
    expect(errors, JSON.stringify(errors)).toBeNull();
    const m = bom.components.find((c: { type: string }) => c.type === 'machine-learning-model');
    expect(m.modelCard.quantitativeAnalysis.performanceMetrics.map((p: { slice: string }) => p.slice)).toEqual(['clean', 'Linf eps 0 (worst case of fgsm)', 'Linf eps 0.1 (worst case of fgsm)']);
    expect(m.externalReferences[0]).toMatchObject({ type: 'attestation' });
    expect(bom.components.some((c: { type: string }) => c.type === 'data')).toBe(true);
    expect(bom.metadata.tools.components[0].name).toBe('advkit');
  });

  it('verify refuses with exit 2 and one line: a flipped weight byte, a renamed or extra file, a changed figure, another key, a truncated envelope', async () => {
    const att = at('report-ed25519', 'attestation.intoto.jsonl');
    const pub = at('ed25519.pub.pem');
    const copy = async (name: string) => { const d = at(name); await fsp.cp(model, d, { recursive: true }); return d; };
    const flipped = await copy('flipped');
    const w = await fsp.readFile(path.join(flipped, 'weights.bin'));
    w[100] = w[100]! ^ 1;
    await fsp.writeFile(path.join(flipped, 'weights.bin'), w);
    expectUsageError(['verify', '--attestation', att, '--model', flipped, '--key', pub], /weights.bin in .* has SHA-256 [0-9a-f]{64}, not the attested [0-9a-f]{64}: the file changed/);
    const renamed = await copy('renamed');
    await fsp.rename(path.join(renamed, 'weights.bin'), path.join(renamed, 'weights2.bin'));
    expectUsageError(['verify', '--attestation', att, '--model', renamed, '--key', pub], /weights.bin is attested but missing/);
    const extra = await copy('extra');
    await fsp.writeFile(path.join(extra, 'group2-shard1of1.bin'), 'more weights');
    expectUsageError(['verify', '--attestation', att, '--model', extra, '--key', pub], /holds group2-shard1of1.bin, which the attestation does not cover/);
    // A figure changed inside a signed payload: the signature no longer verifies.
    const lines = (await fsp.readFile(att, 'utf8')).trim().split('\n');
    const env = JSON.parse(lines[1]!);
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
    st.predicate.report.cleanAccuracy = 1;
    env.payload = Buffer.from(JSON.stringify(st)).toString('base64');
    await fsp.writeFile(at('forged.jsonl'), `${lines[0]}\n${JSON.stringify(env)}\n`);
    expectUsageError(['verify', '--attestation', at('forged.jsonl'), '--model', model, '--key', pub], /line 2: no signature verifies with this key/);
    expectUsageError(['verify', '--attestation', att, '--model', model, '--key', at('other.pub.pem')], /no signature verifies with this key/);
    await fsp.writeFile(at('truncated.jsonl'), (await fsp.readFile(att, 'utf8')).slice(0, 200));
    expectUsageError(['verify', '--attestation', at('truncated.jsonl'), '--model', model, '--key', pub], /line 1 of the attestation is not JSON/);
    expectUsageError(['verify', '--attestation', att, '--model', model, '--key', at('x.npy')], /not a PEM public key/);
  });

  it('a failing gate is attested as FAILED and verify exits 1; a gate re-applied to the figures can fail too; a shard cannot attest', async () => {
    const out = at('report-failed');
    // An untrained model on noise is not 100% accurate: the gate fails, the run exits 1, and the attestation says so.
    const r = advkit(evalArgs(out, at('ed25519.pem'), ['--assert', 'clean>=1']));
    expect(r.code, r.stderr).toBe(1);
    const first = JSON.parse((await fsp.readFile(path.join(out, 'attestation.intoto.jsonl'), 'utf8')).split('\n')[0]!);
    expect(JSON.parse(Buffer.from(first.payload, 'base64').toString('utf8')).predicate).toMatchObject({ result: 'FAILED', failedTests: ['clean>=1'] });
    const v = verify(path.join(out, 'attestation.intoto.jsonl'), model, at('ed25519.pub.pem'));
    expect(v.code, v.stderr).toBe(1);
    expect(v.stdout).toMatch(/attested verdict FAILED/);
    const strict = verify(at('report-ed25519', 'attestation.intoto.jsonl'), model, at('ed25519.pub.pem'), ['--assert', 'fgsm@0.1>=1']);
    expect(strict.code, strict.stderr).toBe(1);
    expect(strict.stdout).toMatch(/FAIL fgsm@0.1>=1/);
    expectUsageError(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--shard', '0/2', '--out', at('s0'), '--attest', at('ed25519.pem')], /Error in --shard: gates .*, attestations \(--attest\) and BOMs/);
    expectUsageError(evalArgs(at('badkey'), at('x.npy')), /Error in --attest: .* is not a PEM private key/);
  });

  it('merged shards are attested as one report (merge --attest), and verify accepts them', async () => {
    const shards = [0, 1].map((i) => at(`shard${i}`));
    for (const [i, d] of shards.entries()) expect(advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--shard', `${i}/2`, '--out', d, '--no-checks']).code).toBe(0);
    const m = advkit(['merge', ...shards, '--out', at('merged'), '--no-checks', '--attest', at('ed25519.pem'), '--assert', 'clean>=0']);
    expect(m.code, m.stderr).toBe(0);
    const v = verify(at('merged', 'attestation.intoto.jsonl'), model, at('ed25519.pub.pem'));
    expect(v.code, v.stderr).toBe(0);
    const robustness = JSON.parse(Buffer.from(JSON.parse((await fsp.readFile(at('merged', 'attestation.intoto.jsonl'), 'utf8')).trim().split('\n')[1]!).payload, 'base64').toString('utf8'));
    expect(robustness.predicate.report.data.examples).toBe(8);
    expect(robustness.predicate.report.shard).toBeUndefined();
  });

  it('advkit attest signs a finished report directory', async () => {
    const out = at('later');
    expect(advkit(['eval', '--model', model, '--data', data, '--attacks', 'fgsm', '--eps', '0.1', '--no-checks', '--out', out]).code).toBe(0);
    const a = advkit(['attest', out, '--key', at('p256.pem'), '--assert', 'clean>=0']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/attested 3 model files of .*: PASSED \(1 gates\)/);
    expect(verify(path.join(out, 'attestation.intoto.jsonl'), model, at('p256.pub.pem')).code).toBe(0);
  });
});
