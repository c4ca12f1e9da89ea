/**
 * Robustness results a release pipeline can trust: in-toto Statements v1 about the model's files
 * (each with its SHA-256, the subjects OpenSSF model signing uses), signed in DSSE envelopes
 * (the pre-authentication encoding of @sigstore/core) with an Ed25519 or ECDSA P-256 key; and a
 * CycloneDX 1.6 ML-BOM of the model, the data and advkit.
 *
 * `attestation.intoto.jsonl` holds one envelope per line: the in-toto `test-result` predicate
 * (the gate verdict: PASSED or FAILED, which gates passed and failed, the configuration) and
 * advkit's robustness predicate (`ROBUSTNESS_PREDICATE`, versioned: the whole report, so a
 * verifier can apply its own gates to the attested figures).
 *
 * verifyAttestation checks every envelope's signature, that the statements' subjects are exactly
 * the files of the model directory with their digests (no extra or missing file), and optionally
 * gates; every failure is one sentence.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sigstore from '@sigstore/core';
import { InvalidArgumentError } from '../util/errors.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { checkAssertions, type Assertion, type GateResult } from './gate.js';
import { REPORT_SCHEMA_ID, type RobustnessReport } from './report.js';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const TEST_RESULT_PREDICATE = 'https://in-toto.io/attestation/test-result/v0.1';
/** advkit's robustness predicate: a URN, versioned; the predicate is `{ report }`, an advkit report. */
export const ROBUSTNESS_PREDICATE = 'urn:advkit:predicate:robustness:v1';
export const DSSE_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const ATTESTATION_FILE = 'attestation.intoto.jsonl';

export interface Statement {
  _type: typeof STATEMENT_TYPE;
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicateType: string;
  predicate: Record<string, unknown>;
}

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

/** A key from PEM text (PKCS#8, SEC1 or SPKI); an Ed25519 or P-256 key only. */
function keyOf(pem: string | KeyObject, kind: 'private' | 'public', what: string): KeyObject {
  let key: KeyObject;
  try {
    key = typeof pem !== 'string' ? pem : kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
  } catch (err) {
    throw new InvalidArgumentError(`Error in ${what}: not a PEM ${kind} key (${(err as Error).message.split('\n')[0]}); give an Ed25519 or ECDSA P-256 key in PEM.`);
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!(type === 'ed25519' || (type === 'ec' && (curve === 'prime256v1' || curve === 'P-256')))) throw new InvalidArgumentError(`Error in ${what}: the key is ${type}${curve ? ` (${curve})` : ''}; advkit signs with Ed25519 or ECDSA P-256.`);
  return key;
}

/** The key id: the SHA-256 of the public key's SPKI DER, hex. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

const pae = (payload: Buffer) => sigstore.dsse.preAuthEncoding(DSSE_PAYLOAD_TYPE, payload);
const algorithm = (key: KeyObject) => (key.asymmetricKeyType === 'ed25519' ? null : 'sha256');

function envelope(statement: Statement, key: KeyObject): Envelope {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  const sig = sign(algorithm(key), pae(payload), key);
  return { payloadType: DSSE_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid: keyId(key), sig: sig.toString('base64') }] };
}

export interface AttestOptions {
  /** The signing key: PEM text of an Ed25519 or ECDSA P-256 private key. */
  key: string | KeyObject;
  /** The gates judged on the report (their verdict is the test-result predicate). */
  gates?: readonly GateResult[];
  /** Where the report lives (recorded in the test-result predicate's configuration). */
  reportFile?: string;
}

/**
 * Signs in-toto Statements about `report`'s model files: the test-result verdict and the
 * robustness figures. Returns the JSON Lines of attestation.intoto.jsonl and the statements.
 * A shard's report cannot be attested (like its gates, it judges part of the data).
 */
export function attest(report: RobustnessReport, o: AttestOptions): { jsonl: string; statements: Statement[] } {
  const fn = 'attest';
  if (report?.schema !== REPORT_SCHEMA_ID) throw new InvalidArgumentError(`Error in ${fn}: not an advkit robustness report.`);
  if (report.shard) throw new InvalidArgumentError(`Error in ${fn}: this is the report of shard ${report.shard.index}/${report.shard.count}; attest the merged report (advkit merge ... --attest KEY).`);
  const files = report.provenance?.model?.files;
  if (!files || Object.keys(files).length === 0) throw new InvalidArgumentError(`Error in ${fn}: the report records no model files and digests to attest (it was computed on a model built in code); evaluate a model directory.`);
  const key = keyOf(o.key, 'private', `${fn} key`);
  const subject = Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, sha256]) => ({ name, digest: { sha256 } }));
  const gates = o.gates ?? [];
  const failed = gates.filter((g) => !g.passed).map((g) => g.name);
  const testResult: Statement = {
    _type: STATEMENT_TYPE, subject, predicateType: TEST_RESULT_PREDICATE,
    predicate: {
      result: failed.length ? 'FAILED' : 'PASSED',
      configuration: [{ name: o.reportFile ?? 'report.json', digest: { sha256: createHash('sha256').update(JSON.stringify(report)).digest('hex') }, annotations: { threatModel: report.threatModel.description, attacks: report.config.attacks.map((a) => a.name).join(','), epsilons: report.config.epsilons.join(',') } }],
      passedTests: gates.filter((g) => g.passed).map((g) => g.name),
      warnedTests: report.checks.filter((c) => c.status === 'warn').map((c) => `sanity check ${c.id}`),
      failedTests: failed,
    },
  };
  const n = report.data.examples;
  const robustness: Statement = {
    _type: STATEMENT_TYPE, subject, predicateType: ROBUSTNESS_PREDICATE,
    predicate: {
      attestedBy: `advkit ${ADVKIT_VERSION}`,
      // 95% Wilson intervals of the accuracies over the n examples, beside the report's figures.
      confidence: {
        level: 0.95, examples: n,
        clean: wilson(report.cleanAccuracy, n),
        worstCase: report.results.map((r) => ({ eps: r.eps, robustAccuracy: r.worstCase.robustAccuracy, interval: wilson(r.worstCase.robustAccuracy, n) })),
      },
      gates: gates.map((g) => ({ name: g.name, passed: g.passed, message: g.message })),
      report,
    },
  };
  const statements = [testResult, robustness];
  return { jsonl: `${statements.map((s) => JSON.stringify(envelope(s, key))).join('\n')}\n`, statements };
}

/** The 95% Wilson score interval of a proportion p over n trials. */
export function wilson(p: number, n: number, z = 1.959963984540054): [number, number] {
  if (!(n > 0)) return [0, 1];
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z / d) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Every regular file under `dir`, relative, '/'-separated, with its SHA-256 (links and special files refused). */
async function filesOf(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const rel = path.relative(dir, full).split(path.sep).join('/');
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) out.set(rel, createHash('sha256').update(await fsp.readFile(full)).digest('hex'));
      else throw new AttestationError(`the model directory holds ${rel}, which is not a regular file (a link, FIFO or device)`);
    }
  };
  await walk(dir);
  return out;
}

/** A verification that failed: the attestation, the key or the model is not what it should be (exit 2). */
export class AttestationError extends InvalidArgumentError {
  constructor(why: string) {
    super(`Error in verify: ${why}.`);
  }
}

export interface Verification {
  statements: Statement[];
  report: RobustnessReport;
  verdict: 'PASSED' | 'FAILED';
  /** The gates re-applied to the attested figures. */
  gates: GateResult[];
}

/**
 * Verifies attestation.intoto.jsonl text against a public key and a model directory: each
 * envelope signed by the key over its DSSE pre-authentication encoding, each statement an
 * in-toto Statement v1 whose subjects are exactly the directory's files and digests; then applies
 * `assertions` to the attested report. Throws AttestationError saying what failed.
 */
export async function verifyAttestation(jsonl: string, o: { modelDir: string; key: string | KeyObject; assertions?: readonly Assertion[]; ignore?: readonly string[] }): Promise<Verification> {
  const key = keyOf(o.key, 'public', 'verify key');
  const want = keyId(key);
  const lines = jsonl.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new AttestationError('the attestation is empty');
  const statements: Statement[] = lines.map((line, k) => {
    let env: Envelope;
    try {
      env = JSON.parse(line) as Envelope;
    } catch {
      throw new AttestationError(`line ${k + 1} of the attestation is not JSON (truncated or corrupt)`);
    }
    if (env?.payloadType !== DSSE_PAYLOAD_TYPE || typeof env.payload !== 'string' || !Array.isArray(env.signatures)) throw new AttestationError(`line ${k + 1} is not a DSSE envelope of an in-toto statement`);
    const payload = Buffer.from(env.payload, 'base64');
    const signed = env.signatures.some((s) => typeof s?.sig === 'string' && (s.keyid === undefined || s.keyid === '' || s.keyid === want)
      && verify(algorithm(key), pae(payload), key, Buffer.from(s.sig, 'base64')));
    if (!signed) throw new AttestationError(`line ${k + 1}: no signature verifies with this key (key id ${want.slice(0, 16)}…); the attestation was altered or signed by another key`);
    let st: Statement;
    try {
      st = JSON.parse(payload.toString('utf8')) as Statement;
    } catch {
      throw new AttestationError(`line ${k + 1}: the signed payload is not JSON`);
    }
    if (st?._type !== STATEMENT_TYPE || typeof st.predicateType !== 'string' || !Array.isArray(st.subject) || st.subject.length === 0
      || !st.subject.every((s) => typeof s?.name === 'string' && /^[0-9a-f]{64}$/.test(String(s?.digest?.sha256)))) {
      throw new AttestationError(`line ${k + 1} is not an in-toto Statement v1 with sha256 subject digests`);
    }
    return st;
  });
  const robustness = statements.find((s) => s.predicateType === ROBUSTNESS_PREDICATE);
  const testResult = statements.find((s) => s.predicateType === TEST_RESULT_PREDICATE);
  if (!robustness || !testResult) throw new AttestationError('the attestation lacks the test-result or the robustness statement');
  const report = (robustness.predicate as { report?: RobustnessReport }).report;
  if (report?.schema !== REPORT_SCHEMA_ID) throw new AttestationError('the robustness statement holds no advkit report');
  // The subjects: exactly the model directory's files, each with its digest.
  const ignored = new Set(o.ignore ?? []);
  const onDisk = await filesOf(o.modelDir).catch((err: unknown) => { throw err instanceof AttestationError ? err : new AttestationError(`cannot read the model directory ${o.modelDir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`); });
  for (const f of ignored) onDisk.delete(f);
  for (const st of statements) {
    const attested = new Map(st.subject.map((s) => [s.name, s.digest.sha256]));
    for (const [name, sha] of attested) {
      const have = onDisk.get(name);
      if (have === undefined) throw new AttestationError(`${name} is attested but missing from ${o.modelDir}`);
      if (have !== sha) throw new AttestationError(`${name} in ${o.modelDir} has SHA-256 ${have}, not the attested ${sha}: the file changed`);
    }
    const extra = [...onDisk.keys()].filter((n) => !attested.has(n));
    if (extra.length) throw new AttestationError(`${o.modelDir} holds ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', …' : ''}, which the attestation does not cover`);
  }
  const gates = o.assertions?.length ? checkAssertions(report, [...o.assertions]) : [];
  const verdict = (testResult.predicate as { result?: string }).result === 'PASSED' && gates.every((g) => g.passed) ? 'PASSED' : 'FAILED';
  return { statements, report, verdict, gates };
}

/**
 * A CycloneDX 1.6 JSON ML-BOM: the model as a `machine-learning-model` component (its files'
 * hashes; the model card's performance metrics are the clean and robust accuracies, sliced by
 * threat model and eps), the data set as a `data` component, advkit as the tool, and an external
 * reference of type `attestation` to the attestation file when there is one.
 */
export function cycloneDxBom(report: RobustnessReport, o: { attestation?: string; serialNumber?: string } = {}): Record<string, unknown> {
  const files = report.provenance?.model?.files ?? {};
  const norm = ({ linf: 'Linf', l2: 'L2', l1: 'L1', l0: 'L0' } as const)[report.config.norm];
  const metrics = [
    { type: 'accuracy', value: String(report.cleanAccuracy), slice: 'clean' },
    ...report.results.map((r) => ({ type: 'robust accuracy', value: String(r.worstCase.robustAccuracy), slice: `${norm} eps ${r.eps} (worst case of ${report.config.attacks.map((a) => a.name).join(', ')})` })),
  ];
  const modelRef = `model-${report.provenance?.model?.sha256?.slice(0, 16) ?? 'unknown'}`;
  const dataRef = `data-${report.provenance?.data?.sha256?.slice(0, 16) ?? 'unknown'}`;
  const uuid = o.serialNumber ?? `urn:uuid:${createHash('sha256').update(JSON.stringify(report)).digest('hex').replace(/^(.{8})(.{4})(.{3})(.{3})(.{12}).*$/, '$1-$2-4$3-8$4-$5')}`;
  return {
    bomFormat: 'CycloneDX', specVersion: '1.6', serialNumber: uuid, version: 1,
    metadata: {
      tools: { components: [{ type: 'application', name: 'advkit', version: ADVKIT_VERSION }] },
      component: { 'bom-ref': modelRef, type: 'machine-learning-model', name: report.model.name },
    },
    components: [
      {
        'bom-ref': modelRef, type: 'machine-learning-model', name: report.model.name,
        hashes: [{ alg: 'SHA-256', content: report.provenance?.model?.sha256 ?? '' }].filter((h) => h.content),
        properties: Object.entries(files).map(([name, sha]) => ({ name: `advkit:file:${name}`, value: sha })),
        modelCard: {
          modelParameters: { task: 'image classification', inputs: [{ format: `image ${report.model.inputShape.join('x')}` }], outputs: [{ format: `${report.model.numClasses} classes` }] },
          quantitativeAnalysis: { performanceMetrics: metrics },
          considerations: { technicalLimitations: [report.evaluation?.note ?? 'see the robustness report'] },
        },
        ...(o.attestation ? { externalReferences: [{ type: 'attestation', url: o.attestation, comment: 'in-toto Statements v1 in DSSE envelopes (advkit verify)' }] } : {}),
      },
      {
        'bom-ref': dataRef, type: 'data', name: report.data.name,
        data: [{ type: 'dataset', name: report.data.name, contents: { properties: [{ name: 'advkit:examples', value: String(report.data.examples) }, { name: 'advkit:sha256', value: report.provenance?.data?.sha256 ?? '' }] } }],
      },
    ],
    dependencies: [{ ref: modelRef, dependsOn: [dataRef] }],
  };
}
