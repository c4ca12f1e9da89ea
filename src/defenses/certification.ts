/**
 * Certification results on disk (`advkit certify --out`): `certify.json` with schema
 * `advkit.certification` version 1 holds the settings, the provenance (model and data digests),
 * each example's certificate and the certified accuracy per radius; a shard's also holds
 * `shard`. `mergeCertifications` joins shards into exactly the file one unsharded run writes.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AdvkitError, DataError } from '../util/errors.js';
import { LOCK_FILE, lockDirectory, writeFileAtomic } from '../util/fs.js';
import { checkShards, type Shard } from '../util/shard.js';
import type { Certificate } from './smoothing.js';

export const CERTIFICATION_SCHEMA = 'advkit.certification';

export interface CertificationFile {
  schema: typeof CERTIFICATION_SCHEMA;
  version: 1;
  config: { sigma: number; n: number; n0: number; alpha: number; seed: number; batchSize: number; radii: number[] };
  provenance: { model: { sha256: string; files: Record<string, string> } | null; data: { name: string; examples: number; sha256: string } };
  shard?: Shard & { start: number; end: number };
  examples: number;
  abstained: number;
  certified: Array<{ radius: number; certifiedAccuracy: number }>;
  certificates: Array<Certificate & { label: number }>;
}

/** Certified accuracy at each radius and the abstentions, from the certificates. */
export function summarizeCertificates(certs: Array<Certificate & { label: number }>, radii: number[]): Pick<CertificationFile, 'examples' | 'abstained' | 'certified'> {
  return {
    examples: certs.length,
    abstained: certs.filter((c) => c.prediction === -1).length,
    certified: radii.map((r) => ({ radius: r, certifiedAccuracy: certs.filter((c) => c.prediction === c.label && c.radius >= r).length / Math.max(1, certs.length) })),
  };
}

export const certificationJson = (f: CertificationFile) => `${JSON.stringify(f, null, 2)}\n`;

/** Joins the shards' certify.json files into `out` (new or empty): the unsharded run's file. */
export async function mergeCertifications(dirs: string[], out: string): Promise<CertificationFile> {
  const files = await Promise.all(dirs.map(async (dir) => {
    try {
      return { dir, file: JSON.parse(await fsp.readFile(path.join(dir, 'certify.json'), 'utf8')) as CertificationFile };
    } catch (err) {
      throw new DataError(`Error in merge: cannot read ${path.join(dir, 'certify.json')} (${(err as Error).message}).`);
    }
  }));
  const shards = checkShards(files.map(({ dir, file }) => ({ dir, file, shard: file.shard, complete: true, identity: JSON.stringify({ config: file.config, provenance: file.provenance }), schema: file.schema })), CERTIFICATION_SCHEMA, 'certification');
  const certificates = shards.flatMap((s) => s.file.certificates);
  const first = shards[0]!.file;
  if (certificates.length !== first.provenance.data.examples) throw new DataError(`Error in merge: the shards hold ${certificates.length} certificates but the run has ${first.provenance.data.examples} examples; the shard files are incomplete.`);
  const { shard: _shard, ...rest } = first;
  const merged: CertificationFile = { ...rest, ...summarizeCertificates(certificates, first.config.radii), certificates };
  const resolved = path.resolve(out);
  const release = await lockDirectory(resolved, '--out');
  try {
    if ((await fsp.readdir(resolved)).some((e) => e !== LOCK_FILE)) throw new AdvkitError('E_OUTPUT_EXISTS', `Error in --out: ${out} is not empty; merge writes into a new or empty directory.`, 2);
    await writeFileAtomic(path.join(resolved, 'certify.json'), certificationJson(merged));
  } finally {
    await release();
  }
  return merged;
}
