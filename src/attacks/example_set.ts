/**
 * Adversarial example sets on disk: write (resumable, atomic), read, and merge shards.
 *
 * A set is a directory holding
 * - `run.json`: `{ schema: 'advkit.example-set', version: 1, config, provenance, complete }`,
 *   the marker that advkit wrote the directory and the identity of the run (attack, options,
 *   data and model digests); a shard's also holds `shard: { index, count, start, end }`;
 * - `manifest.jsonl`: one `ManifestLine` per example, in data order;
 * - `png/NNNNN.png` (lossless 8-bit, NNNNN = the example's position in the data) and/or
 *   `x_adv.npy`, `x.npy` (float32 NHWC) and `y.npy` (int32);
 * - `summary.json`: the figures of the set and its provenance.
 *
 * Work is kept per batch under `.state/` and the final files are assembled from it, so a run
 * started again with the same arguments continues where it stopped and ends with the same bytes
 * as an uninterrupted one. Shards of one run (`shard`) merge into exactly the bytes the
 * unsharded run writes (`mergeExampleSets`).
 *
 * @example
 * const { summary } = await writeExampleSet(model, take(await loadDataset('mnist:test'), 100),
 *   { name: 'pgd', options: { eps: 0.3, steps: 40 } }, { out: 'adv' });
 * const set = await readExampleSet('adv');   // set.ds: the adversarial images with their labels
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { datasetDigest, makeDataset, size, slice, type Dataset } from '../data/dataset.js';
import { MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS } from '../data/image_folder.js';
import { encodeNpy, MAX_NPY_BYTES, npyBody, npyHeader, readNpy } from '../data/npy.js';
import type { Classifier } from '../models/classifier.js';
import type { ModelDigest } from '../models/io.js';
import { AdvkitError, check, checkKnownOptions, DataError, show } from '../util/errors.js';
import { exists, LOCK_FILE, lockDirectory, readRegularFile, replaceDirectory, writeFileAtomic, writeFileAtomicStreamed } from '../util/fs.js';
import { writePng } from '../util/png.js';
import { checkShards, shardRange, type Shard } from '../util/shard.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { attackDataset, type DatasetAttackBatch, type TargetMode } from './dataset.js';
import { ATTACK_NAMES, checkAttackOptions, type AttackName } from './registry.js';
import type { AttackPool } from './pool.js';

export const EXAMPLE_SET_SCHEMA = 'advkit.example-set';
export const EXAMPLE_SET_VERSION = 1;
/** Marks an --out a merge is writing; a merge killed before it finished is started again over it. */
const MERGE_MARKER = '.advkit-merge.json';
const MERGE_MARKER_SCHEMA = 'advkit.merge-in-progress';
/** A manifest larger than this is refused before reading (a million lines are ~300 MB). */
const MAX_MANIFEST_BYTES = 1024 ** 3;

export interface ManifestLine {
  /** Position of the example in the run's data (and its PNG name). */
  index: number;
  /** The example's id in its source data set. */
  id: number;
  file?: string;
  /** The image it was made from, relative to the image folder (folder data only: `cat/cat_0.jpg`). */
  source?: string;
  label: number;
  /** The label's class name (folder data only: the class folder). */
  className?: string;
  target?: number;
  cleanPrediction: number;
  adversarialPrediction: number;
  success: boolean;
  /** Whether the example still meets the goal after rounding to 8-bit pixels (as stored in PNG). */
  successQuantized: boolean;
  linf: number;
  l2: number;
  /** L1 distance (manifests written before L1 existed lack it). */
  l1?: number;
  /** How many values changed (manifests written before L0 existed lack it). */
  l0?: number;
}

/** What ties a set to the exact model and data it was computed on. */
export interface Provenance {
  model: ModelDigest | null;
  data: { name: string; examples: number; sha256: string };
  advkit: string;
  tfjs: string;
  backend: string;
}

export interface ExampleSetSummary {
  examples: number;
  attack: string;
  eps: number;
  norm: string;
  targeted: TargetMode | null;
  cleanAccuracy: number;
  robustAccuracy: number;
  successRate: number;
  successRateQuantized: number;
  meanLinf: number | null;
  meanL2: number | null;
  /** Mean L1 distance of the fooled examples (null when none, or the manifest predates L1). */
  meanL1: number | null;
  provenance: Provenance;
}

export type ExampleFormat = 'png' | 'npy';

export interface WriteExampleSetOptions {
  out: string;
  /** Outputs besides the manifest (default ['png']). */
  format?: ExampleFormat[];
  batchSize?: number;
  target?: TargetMode;
  /** This run's shard of the data (util/shard.ts); the set then holds only that block. */
  shard?: Shard;
  /** The model files' digest (models/io.ts modelDigest), recorded in run.json and summary.json. */
  modelDigest?: ModelDigest | null;
  /** How error messages name the output directory (the CLI: --out). */
  flag?: string;
  /** Replace a directory holding a different or finished advkit run instead of refusing (never one advkit did not write). */
  force?: boolean;
  pool?: AttackPool;
  /** Called once before attacking, with the example (of this set or shard) the run resumes at. */
  onStart?: (from: number, total: number) => void;
  onProgress?: (done: number, total: number, fooled: number) => void;
}

interface RunFile {
  schema: typeof EXAMPLE_SET_SCHEMA;
  version: number;
  config: Record<string, unknown>;
  provenance: Provenance;
  shard?: Shard & { start: number; end: number };
  complete: boolean;
}

/**
 * The lines of a manifest, checked as untrusted input (a shard or a set may come from another
 * machine): every field of its type, `index` consecutive from the first line, `file` exactly the
 * PNG name of its index (it is joined to a directory: no other path is accepted), labels and
 * predictions integers in range. A bad line is refused naming the line, the field and the file.
 */
export function parseManifest(text: string, file: string, flag: string): ManifestLine[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const int = (v: unknown, max = 2 ** 31 - 1) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
  return lines.map((text, k) => {
    const bad = (field: string, value: unknown, want: string) => new DataError(`Error in ${flag}: line ${k + 1} of ${file}: "${field}" is ${JSON.stringify(value)?.slice(0, 80)} but must be ${want}; the manifest is corrupt or was edited.`);
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new DataError(`Error in ${flag}: line ${k + 1} of ${file} is not JSON; the manifest is corrupt.`);
    }
    if (typeof l !== 'object' || l === null || Array.isArray(l)) throw bad('line', l, 'an object');
    if (!int(l.index)) throw bad('index', l.index, 'an integer >= 0');
    if (k > 0 && l.index !== (JSON.parse(lines[0]!) as { index: number }).index + k) throw bad('index', l.index, `${(JSON.parse(lines[0]!) as { index: number }).index + k} (one more than the line before)`);
    if (!int(l.id)) throw bad('id', l.id, 'an integer >= 0');
    if (l.file !== undefined && l.file !== pngName(l.index as number)) throw bad('file', l.file, `${JSON.stringify(pngName(l.index as number))}, the PNG of its index`);
    for (const f of ['label', 'cleanPrediction', 'adversarialPrediction'] as const) if (!int(l[f], MAX_MANIFEST_CLASS)) throw bad(f, l[f], `a class index (an integer from 0 to ${MAX_MANIFEST_CLASS})`);
    if (l.target !== undefined && !int(l.target, MAX_MANIFEST_CLASS)) throw bad('target', l.target, 'a class index');
    for (const f of ['success', 'successQuantized'] as const) if (typeof l[f] !== 'boolean') throw bad(f, l[f], 'true or false');
    for (const f of ['linf', 'l2', 'l1', 'l0'] as const) if ((f === 'linf' || f === 'l2' || l[f] !== undefined) && !(typeof l[f] === 'number' && Number.isFinite(l[f]) && (l[f] as number) >= 0)) throw bad(f, l[f], 'a finite number >= 0');
    for (const f of ['source', 'className'] as const) if (l[f] !== undefined && typeof l[f] !== 'string') throw bad(f, l[f], 'a string');
    return l as unknown as ManifestLine;
  });
}

/** Class indices in a manifest above this are refused (MAX_CLASSES of data/index.ts). */
const MAX_MANIFEST_CLASS = 100_000;

const WRITE_KEYS = ['out', 'flag', 'format', 'batchSize', 'target', 'shard', 'modelDigest', 'force', 'pool', 'onStart', 'onProgress'];
const stateFile = (stateDir: string, start: number, ext: string) => path.join(stateDir, `batch-${start}.${ext}`);
const pngName = (index: number) => `png/${String(index).padStart(5, '0')}.png`;

export function summarizeExampleSet(lines: ManifestLine[], run: { attack: string; eps: number; norm: string; targeted: TargetMode | null }, provenance: Provenance): ExampleSetSummary {
  const n = lines.length;
  const ok = lines.filter((l) => l.success);
  const mean = (vals: number[]) => (vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null);
  const frac = (f: (l: ManifestLine) => boolean) => (n ? lines.filter(f).length / n : 0);
  return {
    examples: n, attack: run.attack, eps: run.eps, norm: run.norm, targeted: run.targeted,
    cleanAccuracy: frac((l) => l.cleanPrediction === l.label),
    robustAccuracy: frac((l) => l.adversarialPrediction === l.label),
    successRate: frac((l) => l.success),
    successRateQuantized: frac((l) => l.successQuantized),
    meanLinf: mean(ok.map((l) => l.linf)),
    meanL2: mean(ok.map((l) => l.l2)),
    meanL1: ok.every((l) => l.l1 !== undefined) ? mean(ok.map((l) => l.l1!)) : null,
    provenance,
  };
}

/** A set's summary from its manifest lines and its run record (the attack, eps, norm and goal it names). */
function summaryOfRun(lines: ManifestLine[], run: RunFile): ExampleSetSummary {
  const options = run.config.options as { eps: number; norm?: string };
  return summarizeExampleSet(lines, { attack: String(run.config.attack), eps: options.eps, norm: options.norm ?? 'linf', targeted: (run.config.targeted as TargetMode | null) ?? null }, run.provenance);
}

/** The manifest lines of one attacked batch (examples at offset + batch positions); writes PNGs. */
async function batchLines(model: Classifier, ds: Dataset, b: DatasetAttackBatch, offset: number, format: ExampleFormat[], out: string): Promise<{ lines: ManifestLine[]; xAdv: Float32Array; x: Float32Array }> {
  const r = b.result;
  const isTargeted = b.targets !== undefined;
  const quantized = tf.tidy(() => tf.argMax(model.logits(tf.div(tf.round(tf.mul(r.adversarial, 255)), 255) as tf.Tensor4D), 1));
  const [qPred, xAdv, x] = await Promise.all([quantized.data(), r.adversarial.data() as Promise<Float32Array>, b.x.data() as Promise<Float32Array>]);
  quantized.dispose();
  const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const lines: ManifestLine[] = [];
  for (let k = 0; k < b.end - b.start; k++) {
    const index = offset + b.start + k;
    const line: ManifestLine = {
      index, id: ds.ids[b.start + k]!,
      ...(ds.sources ? { source: ds.sources[b.start + k]! } : {}),
      label: b.labels[k]!,
      ...(ds.sources ? { className: ds.classNames[b.labels[k]!] } : {}),
      ...(isTargeted ? { target: b.targets![k]! } : {}),
      cleanPrediction: b.cleanPredictions[k]!, adversarialPrediction: r.predictions[k]!, success: r.success[k] === 1,
      successQuantized: isTargeted ? qPred[k] === b.targets![k] : qPred[k] !== b.labels[k],
      linf: r.norms.linf[k]!, l2: r.norms.l2[k]!, l1: r.norms.l1[k]!, l0: r.norms.l0[k]!,
    };
    if (format.includes('png')) {
      line.file = pngName(index);
      await writePng(path.join(out, line.file), xAdv.subarray(k * per, (k + 1) * per), ds.shape);
    }
    lines.push(line);
  }
  return { lines, xAdv: Float32Array.from(xAdv), x: Float32Array.from(x) };
}

async function readRunFile(file: string, fn: string): Promise<RunFile> {
  try {
    const run = JSON.parse(await fsp.readFile(file, 'utf8')) as RunFile;
    if (typeof run !== 'object' || run === null || typeof run.config !== 'object') throw new Error('no config');
    return run;
  } catch (err) {
    throw new DataError(`Error in ${fn}: ${file} is not an advkit run record (${(err as Error).message}); remove the directory or choose another one.`);
  }
}

/**
 * Attacks `ds` (or the shard's block of it) with the registry attack `attack.name` and writes the
 * example set to `options.out`, resuming a run the directory already holds.
 */
export async function writeExampleSet(model: Classifier, ds: Dataset, attack: { name: AttackName; options: Record<string, unknown> & { eps: number } }, options: WriteExampleSetOptions): Promise<{ summary: ExampleSetSummary; resumedFrom: number; alreadyComplete: boolean }> {
  const fn = 'writeExampleSet';
  checkKnownOptions(fn, options, WRITE_KEYS);
  check(ATTACK_NAMES.includes(attack?.name), fn, () => `attack.name must be one of ${ATTACK_NAMES.join(', ')}, but got ${show(attack?.name)}.`);
  checkAttackOptions(fn, attack.name, attack.options);
  check(typeof options.out === 'string' && options.out !== '', fn, () => `out must be a directory path, but got ${show(options.out)}.`);
  const flag = options.flag ?? 'out';
  const format = options.format ?? ['png'];
  const batchSize = options.batchSize ?? 128;
  const out = path.resolve(options.out);
  const stateDir = path.join(out, '.state');
  const opts = attack.options as Record<string, unknown>;
  const provenance: Provenance = {
    model: options.modelDigest ?? null,
    data: { name: ds.name, examples: size(ds), sha256: datasetDigest(ds) },
    advkit: ADVKIT_VERSION, tfjs: tf.version_core, backend: tf.getBackend(),
  };
  // The head and preprocessing change every result: a run is identified by them too.
  const classifier = { ...(model.output?.head ? { head: model.output.head } : {}), ...(model.preprocessing ? { preprocessing: model.preprocessing } : {}) };
  const config = { attack: attack.name, options: opts, targeted: options.target ?? null, batchSize, format, examples: size(ds), model: provenance.model?.sha256 ?? null, data: provenance.data.sha256, ...(Object.keys(classifier).length ? { classifier } : {}) };
  const { start, end } = shardRange(size(ds), options.shard);
  const runFile = path.join(out, 'run.json');
  const record = (complete: boolean): RunFile => ({ schema: EXAMPLE_SET_SCHEMA, version: EXAMPLE_SET_VERSION, config, provenance, ...(options.shard ? { shard: { ...options.shard, start, end } } : {}), complete });
  const identity = (r: RunFile) => JSON.stringify({ config: r.config, shard: r.shard ?? null });
  const summaryOf = (lines: ManifestLine[]) => summaryOfRun(lines, record(true));

  const release = await lockDirectory(out, flag);
  try {
    if (await exists(runFile)) {
      const prev = await readRunFile(runFile, flag);
      if (identity(prev) !== identity(record(false))) {
        if (!options.force) throw new AdvkitError('E_OUTPUT_EXISTS', `Error in ${flag}: ${options.out} holds a different run (${runFile}); choose another directory or pass --force (force: true) to replace it.`, 2);
        await replaceDirectory(out, flag, true);
      } else if (prev.complete && !options.force) {
        const summary = JSON.parse(await fsp.readFile(path.join(out, 'summary.json'), 'utf8')) as ExampleSetSummary;
        return { summary, resumedFrom: end - start, alreadyComplete: true };
      } else if (options.force) {
        await replaceDirectory(out, flag, true);
      }
    } else {
      // Empty (or new) is fine; anything else advkit did not write is refused, --force or not.
      await replaceDirectory(out, flag, false);
    }
    return await attackInto(model, ds, attack, options, { out, stateDir, runFile, start, end, batchSize, format, record, summaryOf });
  } finally {
    await release();
  }
}

async function attackInto(model: Classifier, ds: Dataset, attack: { name: AttackName; options: Record<string, unknown> & { eps: number } }, options: WriteExampleSetOptions, c: { out: string; stateDir: string; runFile: string; start: number; end: number; batchSize: number; format: ExampleFormat[]; record: (complete: boolean) => RunFile; summaryOf: (lines: ManifestLine[]) => ExampleSetSummary }): Promise<{ summary: ExampleSetSummary; resumedFrom: number; alreadyComplete: boolean }> {
  const { out, stateDir, runFile, start, end, batchSize, format, record, summaryOf } = c;
  const opts = attack.options as Record<string, unknown>;
  await fsp.mkdir(stateDir, { recursive: true });
  // A run killed mid-write leaves temporary files of its atomic writes; they are not the set's.
  for (const d of [out, path.join(out, 'png'), stateDir]) {
    for (const f of await fsp.readdir(d).catch(() => [] as string[])) if (f.includes('.tmp-')) await fsp.rm(path.join(d, f), { force: true });
  }
  await writeFileAtomic(runFile, `${JSON.stringify(record(false), null, 2)}\n`);

  // Resume after the last batch whose state file exists.
  const part = slice(ds, start, end);
  const total = size(part);
  const done = new Set((await fsp.readdir(stateDir)).filter((f) => f.endsWith('.json')).map((f) => Number(f.slice(6, -5))));
  let from = 0;
  while (done.has(from)) from += batchSize;
  let fooled = 0;
  options.onStart?.(Math.min(from, total), total);
  options.onProgress?.(Math.min(from, total), total, 0);
  for await (const b of attackDataset(attack.name, model, part, opts as never, { batchSize, from, target: options.target, pool: options.pool })) {
    const { lines, xAdv, x } = await batchLines(model, part, b, start, format, out);
    tf.dispose([b.x, b.result.adversarial]);
    if (format.includes('npy')) {
      await writeFileAtomic(stateFile(stateDir, b.start, 'xadv'), new Uint8Array(xAdv.buffer));
      await writeFileAtomic(stateFile(stateDir, b.start, 'x'), new Uint8Array(x.buffer));
    }
    // The JSON is written last: its presence marks the batch as done.
    await writeFileAtomic(stateFile(stateDir, b.start, 'json'), JSON.stringify({ lines }));
    fooled += lines.filter((l) => l.success).length;
    options.onProgress?.(b.end, total, fooled);
  }

  // Assemble the final files from the per-batch state, in order; the NPY files are streamed
  // batch by batch, so a large set never sits in memory whole.
  const starts = Array.from({ length: Math.ceil(total / batchSize) }, (_, i) => i * batchSize);
  const lines: ManifestLine[] = [];
  for (const s of starts) lines.push(...(JSON.parse(await fsp.readFile(stateFile(stateDir, s, 'json'), 'utf8')) as { lines: ManifestLine[] }).lines);
  const fromState = async function* (ext: string): AsyncGenerator<Uint8Array> {
    for (const s of starts) yield await fsp.readFile(stateFile(stateDir, s, ext));
  };
  const npy = format.includes('npy') ? { shape: [total, ...ds.shape], parts: fromState, labels: part.labels } : undefined;
  const summary = summaryOf(lines);
  await writeSetFiles(out, lines, npy, summary);
  await writeFileAtomic(runFile, `${JSON.stringify(record(true), null, 2)}\n`);
  await fsp.rm(stateDir, { recursive: true, force: true });
  return { summary, resumedFrom: from, alreadyComplete: false };
}

/** manifest.jsonl, the NPY files (streamed from raw float32 parts) and summary.json. */
async function writeSetFiles(out: string, lines: ManifestLine[], npy: { shape: number[]; parts: (ext: 'xadv' | 'x') => AsyncIterable<Uint8Array>; labels: Int32Array } | undefined, summary: ExampleSetSummary): Promise<void> {
  await writeFileAtomic(path.join(out, 'manifest.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  if (npy) {
    const streamed = async function* (parts: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      yield npyHeader('<f4', npy.shape);
      yield* parts;
    };
    await writeFileAtomicStreamed(path.join(out, 'x_adv.npy'), streamed(npy.parts('xadv')));
    await writeFileAtomicStreamed(path.join(out, 'x.npy'), streamed(npy.parts('x')));
    await writeFileAtomic(path.join(out, 'y.npy'), encodeNpy(Int32Array.from(npy.labels), [npy.shape[0]!]));
  }
  await writeFileAtomic(path.join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
}

/**
 * Joins the shards of one run into `out`: the same bytes (manifest, PNGs, NPYs, summary,
 * run.json) the unsharded run writes. Refuses (exit 2) missing, duplicate or unfinished shards
 * and shards of different runs, models or data.
 */
export async function mergeExampleSets(dirs: string[], out: string): Promise<ExampleSetSummary> {
  const fn = 'merge';
  const runs = await Promise.all(dirs.map(async (d) => ({ dir: d, run: await readRunFile(path.join(d, 'run.json'), fn) })));
  const shards = checkShards(runs.map(({ dir, run }) => ({ dir, shard: run.shard, complete: run.complete, identity: JSON.stringify({ config: run.config, provenance: run.provenance }), schema: run.schema })), EXAMPLE_SET_SCHEMA, 'example set');
  const resolvedOut = path.resolve(out);
  const release = await lockDirectory(resolvedOut, '--out');
  const marker = path.join(resolvedOut, MERGE_MARKER);
  try {
    const entries = (await fsp.readdir(resolvedOut)).filter((e) => e !== LOCK_FILE);
    // A merge killed before it finished (kill -9) left its marker: its files are advkit's, replaced.
    const unfinished = entries.includes(MERGE_MARKER) && (await fsp.readFile(marker, 'utf8').then((t) => (JSON.parse(t) as { schema?: unknown }).schema === MERGE_MARKER_SCHEMA, () => false));
    if (entries.length && !unfinished) throw new AdvkitError('E_OUTPUT_EXISTS', `Error in --out: ${out} is not empty; merge writes into a new or empty directory.`, 2);
    if (unfinished) await replaceDirectory(resolvedOut, '--out', true);
    await writeFileAtomic(marker, JSON.stringify({ schema: MERGE_MARKER_SCHEMA, shards: dirs.map((d) => path.resolve(d)) }));
    try {
      const summary = await mergeInto(runs, shards.map((s) => s.dir), resolvedOut);
      await fsp.rm(marker, { force: true });
      return summary;
    } catch (err) {
      await replaceDirectory(resolvedOut, '--out', true); // it was empty: leave no half-merged set
      throw err;
    }
  } finally {
    await release();
  }
}

async function mergeInto(runs: Array<{ dir: string; run: RunFile }>, ordered: string[], resolvedOut: string): Promise<ExampleSetSummary> {
  const fn = 'merge';
  const first = runs[0]!.run;
  const lines: ManifestLine[] = [];
  const from: string[] = [];
  for (const d of ordered) {
    const manifest = path.join(d, 'manifest.jsonl');
    const own = parseManifest((await readRegularFile(manifest, `Error in ${fn}: ${manifest}`, MAX_MANIFEST_BYTES)).toString('utf8'), manifest, fn);
    lines.push(...own);
    from.push(...own.map(() => d));
  }
  for (const [k, l] of lines.entries()) if (l.index !== k) throw new DataError(`Error in ${fn}: example ${k} is missing from the shards (found index ${l.index}); the shard directories are incomplete.`);
  if (lines.length !== Number(first.config.examples)) throw new DataError(`Error in ${fn}: the shards hold ${lines.length} examples but the run has ${String(first.config.examples)}; the shard directories are incomplete.`);
  for (const [k, l] of lines.entries()) if (l.file) await copyInto(path.join(from[k]!, l.file), path.join(resolvedOut, l.file));
  const format = first.config.format as ExampleFormat[];
  let npy: Parameters<typeof writeSetFiles>[2];
  if (format.includes('npy')) {
    // The shards' float32 data bytes as stored, one shard at a time, after one header.
    const body = async (d: string, name: string) => {
      const file = path.join(d, name);
      const { dtype, shape, body: bytes } = npyBody(await readRegularFile(file, `Error reading .npy file ${file}`, MAX_NPY_BYTES), file);
      if (dtype !== '<f4') throw new DataError(`Error in ${fn}: ${file} holds ${dtype}, not the float32 advkit writes; the shard directory is corrupt.`);
      return { shape, bytes };
    };
    // The first shard's x_adv.npy gives the image shape for the header; it is read once.
    const head = await body(ordered[0]!, 'x_adv.npy');
    const bodies = async function* (name: string): AsyncGenerator<Uint8Array> {
      for (const [k, d] of ordered.entries()) yield k === 0 && name === 'x_adv.npy' ? head.bytes : (await body(d, name)).bytes;
    };
    const labels: number[] = [];
    for (const d of ordered) labels.push(...(await readNpy(path.join(d, 'y.npy'))).data);
    const { shape } = head;
    npy = { shape: [lines.length, ...shape.slice(1)], parts: (ext) => bodies(ext === 'xadv' ? 'x_adv.npy' : 'x.npy'), labels: Int32Array.from(labels) };
  }
  const summary = summaryOfRun(lines, first);
  await writeSetFiles(resolvedOut, lines, npy, summary);
  const { shard: _shard, ...whole } = first;
  await writeFileAtomic(path.join(resolvedOut, 'run.json'), `${JSON.stringify({ ...whole, complete: true }, null, 2)}\n`);
  return summary;
}

async function copyInto(from: string, to: string): Promise<void> {
  await fsp.mkdir(path.dirname(to), { recursive: true });
  try {
    await fsp.copyFile(from, to);
  } catch (err) {
    throw new DataError(`Error in merge: cannot copy ${from} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the shard directory is incomplete.`);
  }
}

export async function isExampleSet(dir: string): Promise<boolean> {
  return exists(path.join(dir, 'manifest.jsonl'));
}

export interface ExampleSet {
  /** The adversarial images with their true labels, in manifest order. */
  ds: Dataset;
  /** Whether each example fooled the model (from the manifest). */
  success: boolean[];
  /** The PNG name of each example, relative to the set. */
  names: string[];
  lines: ManifestLine[];
}

/**
 * Reads an example set (its x_adv.npy, or else its 8-bit PNGs). With `npyOnly`, a set without
 * x_adv.npy is an error instead of being read from its rounded PNGs. `flag` names the argument
 * in error messages.
 */
export async function readExampleSet(dir: string, options: { flag?: string; npyOnly?: boolean; classNames?: readonly string[] } = {}): Promise<ExampleSet> {
  const flag = options.flag ?? 'readExampleSet';
  if (!(await isExampleSet(dir))) throw new DataError(`Error in ${flag}: ${dir} holds no manifest.jsonl; it is not an advkit example set.`);
  const manifest = path.join(dir, 'manifest.jsonl');
  const lines = parseManifest((await readRegularFile(manifest, `Error in ${flag}: ${manifest}`, MAX_MANIFEST_BYTES)).toString('utf8'), manifest, flag);
  if (lines.length === 0) throw new DataError(`Error in ${flag}: ${manifest} holds no examples.`);
  if (options.classNames) {
    const k = options.classNames.length;
    const i = lines.findIndex((l) => l.label >= k);
    if (i >= 0) throw new DataError(`Error in ${flag}: line ${i + 1} of ${manifest}: label ${lines[i]!.label} is not one of the ${k} classes.`);
  }
  let images: Float32Array;
  let shape: [number, number, number];
  if (await exists(path.join(dir, 'x_adv.npy'))) {
    const x = await readNpy(path.join(dir, 'x_adv.npy'));
    if (x.shape[0] !== lines.length || x.shape.length < 3 || x.shape.length > 4) throw new DataError(`Error in ${flag}: ${path.join(dir, 'x_adv.npy')} has shape (${x.shape.join(', ')}) but the manifest has ${lines.length} examples; the set is corrupt.`);
    images = Float32Array.from(x.data);
    shape = [x.shape[1]!, x.shape[2]!, x.shape[3] ?? 1];
  } else {
    if (options.npyOnly) throw new DataError(`Error in ${flag}: ${dir} holds an example set without x_adv.npy; write it with advkit attack --format png,npy.`);
    const decoded = await Promise.all(lines.map(async (l) => {
      if (!l.file) throw new DataError(`Error in ${flag}: ${dir} has neither x_adv.npy nor PNG files; write it with advkit attack --format png or npy.`);
      const file = path.join(dir, l.file);
      return sharp(await readRegularFile(file, `Error in ${flag}: ${file}`, MAX_IMAGE_FILE_BYTES), { limitInputPixels: MAX_IMAGE_PIXELS }).raw().toBuffer({ resolveWithObject: true });
    }));
    const first = decoded[0]!.info;
    shape = [first.height, first.width, first.channels];
    images = new Float32Array(lines.length * first.height * first.width * first.channels);
    decoded.forEach((d, i) => { for (let k = 0; k < d.data.length; k++) images[i * d.data.length + k] = d.data[k]! / 255; });
  }
  const labels = Int32Array.from(lines.map((l) => l.label));
  const k = Math.max(2, labels.reduce((a, b) => Math.max(a, b), 0) + 1);
  const classNames = options.classNames ?? Array.from({ length: k }, (_, i) => String(i));
  return {
    ds: makeDataset(`${dir} (x_adv)`, images, labels, shape, classNames),
    success: lines.map((l) => l.success),
    names: lines.map((l) => pngName(l.index)),
    lines,
  };
}
