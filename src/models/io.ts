/**
 * Model files without @tensorflow/tfjs-node: TensorFlow.js LayersModel directories
 * (model.json + weight files, the format `tensorflowjs_converter` and Keras export) and
 * GraphModel directories.
 *
 * Weight paths are confined to the model directory (tfjs-node's own loader reads whatever
 * `../` names); sizes are checked against the weight manifest, so truncated or corrupt files
 * give clear errors. Saves are atomic: weights first, model.json last, each by rename.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, promises as fsp, readSync, realpathSync, statSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AdvkitError, ModelError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { checkModelJson } from './topology.js';
import type { OnnxModel } from './compiler/onnx.js';

const { onnx } = onnxProto;
import { fromGraphModel, fromLayersModel, fromOnnx, type Bounds, type Classifier, type ClassifierOptions, type Normalization } from './classifier.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'advkit.json';
export const ONNX_FILE = 'model.onnx';
/** An ONNX file larger than this is refused (protobuf messages cannot exceed 2 GiB). */
export const MAX_ONNX_BYTES = 2 * 1024 ** 3;

/** advkit's record of how a model was made, saved beside model.json. */
export interface ModelMetadata {
  advkitVersion: string;
  architecture?: string;
  data?: string;
  inputShape?: number[];
  numClasses?: number;
  classNames?: string[];
  bounds?: Bounds;
  normalization?: Normalization;
  /** The range the model expects its inputs in (ClassifierOptions.inputRange). */
  inputRange?: Bounds;
  /** The output to attack in a model with several (ClassifierOptions.head). */
  head?: string;
  training?: Record<string, unknown>;
  [key: string]: unknown;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

function specBytes(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes = DTYPE_BYTES[dtype];
  if (bytes === undefined) throw new ModelError(`weight ${spec.name} has unsupported dtype ${dtype}`);
  return count * bytes;
}

/** Why a weight's values are not all finite once dequantized ("holds NaN at flat index 3"), or undefined. */
function nonFinite(spec: tf.io.WeightsManifestEntry, raw: Uint8Array): string | undefined {
  const q = spec.quantization;
  if (spec.dtype !== 'float32') return undefined;
  if (!q) {
    const values = new Float32Array(raw.slice().buffer);
    const i = values.findIndex((v) => !Number.isFinite(v));
    return i >= 0 ? `holds ${values[i]} at flat index ${i}` : undefined;
  }
  if (q.dtype === 'float16') {
    const h = new Uint16Array(raw.slice().buffer);
    const i = h.findIndex((v) => (v & 0x7c00) === 0x7c00); // exponent all ones: infinity or NaN
    return i >= 0 ? `holds ${(h[i]! & 0x3ff) ? 'NaN' : 'Infinity'} (float16 bits 0x${h[i]!.toString(16)}) at flat index ${i}` : undefined;
  }
  for (const k of ['scale', 'min'] as const) {
    const v = (q as Record<string, unknown>)[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v))) return `has quantization ${k} ${JSON.stringify(v) ?? String(v)}, which is not a finite number`;
  }
  const scale = q.scale ?? 1;
  const min = q.min ?? 0;
  const top = (q.dtype === 'uint8' ? 255 : 65535) * Math.abs(scale) + Math.abs(min);
  return Number.isFinite(top) && Math.abs(Math.fround(top)) !== Infinity ? undefined : `dequantizes beyond float32 (scale ${scale}, min ${min})`;
}

/** Resolves a weight path inside `dir`, refusing anything that escapes it. */
export function confinedPath(dir: string, p: string): string {
  const root = path.resolve(dir);
  if (typeof p !== 'string' || p === '' || path.isAbsolute(p) || p.includes('\0')) {
    throw new ModelError(`Error loading model ${dir}: weight path ${JSON.stringify(p)} in ${MODEL_JSON} must be a relative path inside the model directory.`);
  }
  const full = path.resolve(root, p);
  if (full !== root && !full.startsWith(root + path.sep)) {
    throw new ModelError(`Error loading model ${dir}: weight path ${JSON.stringify(p)} in ${MODEL_JSON} points outside the model directory; refusing to read it.`);
  }
  return full;
}

/** Weight files above this are refused (the largest image classifiers are a few GB). */
export const MAX_WEIGHT_BYTES = 8 * 1024 ** 3;

/** model.json larger than this is refused before reading (a topology is megabytes at most). */
export const MAX_MODEL_JSON_BYTES = 256 * 1024 * 1024;

/**
 * Reads an untrusted model file: a regular file only (no FIFO, device or directory, which
 * could hang or never end), inside `root` after resolving symlinks, of at most `maxBytes`
 * (or exactly `exactBytes`), checked before a byte is read.
 */
async function readModelFile(file: string, what: string, root: string, limit: { maxBytes?: number; exactBytes?: number; name?: string }): Promise<Buffer> {
  const shown = limit.name ?? file;
  let real: string;
  try {
    real = await fsp.realpath(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelError(`Error loading ${what}: ${shown} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`}.`);
  }
  const realRoot = await fsp.realpath(root).catch(() => path.resolve(root));
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) throw new ModelError(`Error loading ${what}: ${shown} is a link to ${real}, outside the model directory; refusing to read it.`);
  const st = await fsp.stat(real);
  if (!st.isFile()) throw new ModelError(`Error loading ${what}: ${shown} is not a regular file (a ${st.isDirectory() ? 'directory' : st.isFIFO() ? 'FIFO' : 'device or socket'}); refusing to read it.`);
  if (limit.exactBytes !== undefined && st.size !== limit.exactBytes) throw new ModelError(`Error loading ${what}: weight file ${shown} holds ${st.size} bytes but the manifest needs ${limit.exactBytes}; the files are truncated or corrupt.`);
  if (limit.maxBytes !== undefined && st.size > limit.maxBytes) throw new ModelError(`Error loading ${what}: ${shown} is ${st.size} bytes, more than the ${limit.maxBytes} allowed; it is not a model file.`);
  return fsp.readFile(real);
}

async function readJson(file: string, what: string): Promise<unknown> {
  const text = (await readModelFile(file, what, path.dirname(file), { maxBytes: MAX_MODEL_JSON_BYTES })).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelError(`Error loading ${what}: ${file} is not valid JSON (${(err as Error).message}); the file is truncated or corrupt.`);
  }
}

export interface ModelFiles {
  format: 'layers-model' | 'graph-model';
  artifacts: tf.io.ModelArtifacts;
  metadata?: ModelMetadata;
}

/** Reads and checks a model directory (or a path to its model.json). */
export async function readModelFiles(location: string): Promise<ModelFiles> {
  const file = location.endsWith('.json') ? location : path.join(location, MODEL_JSON);
  const dir = path.dirname(file);
  const json = (await readJson(file, `model ${location}`)) as Record<string, unknown>;
  if (typeof json !== 'object' || json === null || !('modelTopology' in json)) {
    throw new ModelError(`Error loading model ${location}: ${file} has no modelTopology; it is not a TensorFlow.js model.json.`);
  }
  const topology = json.modelTopology as Record<string, unknown> | null;
  const isGraph = json.format === 'graph-model' || (topology !== null && typeof topology === 'object' && Array.isArray((topology as { node?: unknown }).node));
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) {
    throw new ModelError(`Error loading model ${location}: ${file} has no weightsManifest array.`);
  }
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  // The topology and every weight's shape, before a byte of weights is read or allocated.
  checkModelJson(`Error loading model ${location}`, isGraph ? null : topology, (manifest as tf.io.WeightsManifestConfig).flatMap((g) => (Array.isArray(g?.weights) ? g.weights : [])));
  for (const group of manifest as tf.io.WeightsManifestConfig) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ModelError(`Error loading model ${location}: a weightsManifest entry lacks paths or weights.`);
    }
    let want = 0;
    for (const spec of group.weights) want += specBytes(spec);
    // Sizes from the file system, checked against the manifest before any weight is read.
    const sizes: number[] = [];
    for (const p of group.paths) {
      const full = confinedPath(dir, p);
      const st = await fsp.stat(full).catch(() => undefined);
      if (!st) throw new ModelError(`Error loading model ${location}: weight file ${p} is missing.`);
      if (!st.isFile()) await readModelFile(full, `model ${location}`, dir, { name: `weight file ${p}` }); // refuses it, saying why
      sizes.push(st.size);
    }
    const onDisk = sizes.reduce((a, b) => a + b, 0);
    if (onDisk !== want) throw new ModelError(`Error loading model ${location}: weight files ${group.paths.join(', ')} hold ${onDisk} bytes but the manifest needs ${want}; the files are truncated or corrupt.`);
    const chunks: Uint8Array[] = [];
    for (const [k, p] of group.paths.entries()) chunks.push(await readModelFile(confinedPath(dir, p), `model ${location}`, dir, { exactBytes: sizes[k], name: `weight file ${p}` }));
    const got = chunks.reduce((a, c) => a + c.length, 0);
    if (got !== want) {
      throw new ModelError(`Error loading model ${location}: weight files ${group.paths.join(', ')} hold ${got} bytes but the manifest needs ${want}; the files are truncated or corrupt.`);
    }
    weightSpecs.push(...group.weights);
    buffers.push(...chunks);
  }
  const total = buffers.reduce((a, c) => a + c.length, 0);
  const weightData = new Uint8Array(total);
  let at = 0;
  for (const b of buffers) {
    weightData.set(b, at);
    at += b.length;
  }
  // A NaN or infinite weight makes every logit garbage (and every attack "succeed"): refuse it,
  // quantized ones as they dequantize (float16 bits, or min + q * scale).
  let offset = 0;
  for (const spec of weightSpecs) {
    const bytes = specBytes(spec);
    const bad = nonFinite(spec, weightData.subarray(offset, offset + bytes));
    if (bad) throw new ModelError(`Error loading model ${location}: weight ${spec.name} ${bad}; a model with non-finite weights gives meaningless results. Retrain or re-export it.`);
    offset += bytes;
  }
  let metadata: ModelMetadata | undefined;
  try {
    await fsp.access(path.join(dir, METADATA_JSON));
    metadata = (await readJson(path.join(dir, METADATA_JSON), `model metadata ${location}`)) as ModelMetadata;
  } catch (err) {
    if (err instanceof ModelError) throw err;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: topology as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs,
    weightData: weightData.buffer,
    format: json.format as string | undefined,
    generatedBy: json.generatedBy as string | undefined,
    convertedBy: json.convertedBy as string | null | undefined,
    signature: json.signature as object | undefined,
    userDefinedMetadata: json.userDefinedMetadata as Record<string, {}> | undefined,
    modelInitializer: json.modelInitializer as object | undefined,
  };
  return { format: isGraph ? 'graph-model' : 'layers-model', artifacts, metadata };
}

/** The SHA-256 of a model's files, to tie a result to the exact model it was computed on. */
export interface ModelDigest {
  /**
   * SHA-256 of model.json, its weight files in manifest order, then advkit.json when present
   * (`cat model.json weights.bin advkit.json | sha256sum`).
   */
  sha256: string;
  /** Each file's own SHA-256, by its path relative to the model directory. */
  files: Record<string, string>;
}

/** Hashes model.json and the weight files it names (confined to its directory, as loading is). */
export async function modelDigest(location: string): Promise<ModelDigest> {
  const onnxPath = await onnxFile(location);
  if (onnxPath) return onnxDigest(onnxPath);
  const file = location.endsWith('.json') ? location : path.join(location, MODEL_JSON);
  return digestFiles(path.dirname(file), `model ${location}`, MAX_WEIGHT_BYTES, async (add) => {
    const json = JSON.parse((await add(path.basename(file), file)).toString('utf8')) as { weightsManifest?: Array<{ paths?: string[] }> };
    for (const group of json.weightsManifest ?? []) for (const p of group.paths ?? []) await add(p, confinedPath(path.dirname(file), p));
  });
}

/** An ONNX model's digest: model.onnx, its external data files in the order its tensors name them, then advkit.json. */
async function onnxDigest(file: string): Promise<ModelDigest> {
  const dir = path.dirname(file);
  return digestFiles(dir, `ONNX model ${file}`, MAX_ONNX_BYTES, async (add) => {
    const model = onnx.ModelProto.decode(await add(path.basename(file), file)) as unknown as OnnxModel;
    const seen = new Set<string>();
    for (const t of model.graph?.initializer ?? []) {
      const loc = (t.externalData ?? []).find((e) => e.key === 'location')?.value;
      if (t.dataLocation === 1 && loc && !seen.has(loc)) { seen.add(loc); await add(loc, confinedPath(dir, loc)); }
    }
  });
}

/**
 * The digest of the files `list` adds (each read as an untrusted model file inside `dir`, its
 * bytes returned), then of advkit.json when present: it sets bounds, normalization and head, which
 * change every result.
 */
async function digestFiles(dir: string, what: string, maxBytes: number, list: (add: (name: string, full: string) => Promise<Buffer>) => Promise<void>): Promise<ModelDigest> {
  const all = createHash('sha256');
  const files: Record<string, string> = {};
  const add = async (name: string, full: string) => {
    const bytes = await readModelFile(full, what, dir, { maxBytes, name });
    all.update(bytes);
    files[name] = createHash('sha256').update(bytes).digest('hex');
    return bytes;
  };
  await list(add);
  if (await fsp.stat(path.join(dir, METADATA_JSON)).then((st) => st.isFile(), () => false)) await add(METADATA_JSON, path.join(dir, METADATA_JSON));
  return { sha256: all.digest('hex'), files };
}

/** Loads a LayersModel directory. */
export async function loadLayersModel(location: string): Promise<tf.LayersModel> {
  const files = await readModelFiles(location);
  if (files.format !== 'layers-model') throw new ModelError(`Error loading model ${location}: it is a graph model; use loadGraphModel or loadClassifier.`);
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(files.artifacts));
  } catch (err) {
    throw new ModelError(`Error loading model ${location}: TensorFlow.js could not build it (${(err as Error).message.split('\n')[0]}).`, { cause: err });
  }
}

/** Loads a GraphModel directory. */
export async function loadGraphModel(location: string): Promise<tf.GraphModel> {
  const files = await readModelFiles(location);
  try {
    return await tf.loadGraphModel(tf.io.fromMemory(files.artifacts));
  } catch (err) {
    throw new ModelError(`Error loading graph model ${location}: TensorFlow.js could not build it (${(err as Error).message.split('\n')[0]}).`, { cause: err });
  }
}

/**
 * The options a model directory is loaded with: the caller's, over advkit.json's bounds,
 * normalization, input range and head. advkit.json's values are checked as the options are.
 */
export function classifierOptionsFor(metadata: ModelMetadata | undefined, options: ClassifierOptions = {}, location = 'the model directory'): ClassifierOptions {
  const md: Partial<ModelMetadata> = metadata ?? {};
  const where = `Error in ${METADATA_JSON} of ${location}`;
  const range = (v: unknown) => Array.isArray(v) && v.length === 2 && v.every((a) => typeof a === 'number' && Number.isFinite(a)) && v[0] < v[1];
  const values = (v: unknown) => (typeof v === 'number' && Number.isFinite(v)) || (Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'number' && Number.isFinite(a)));
  for (const key of ['bounds', 'inputRange'] as const) {
    if (md[key] !== undefined && !range(md[key])) throw new ModelError(`${where}: ${key} must be [lo, hi] with finite lo < hi, but got ${JSON.stringify(md[key])}; fix the file or pass the option.`);
  }
  const norm = md.normalization as { mean?: unknown; std?: unknown } | undefined;
  if (norm !== undefined && (typeof norm !== 'object' || norm === null || !values(norm.mean) || !values(norm.std))) {
    throw new ModelError(`${where}: normalization must be {"mean": number or per-channel numbers, "std": likewise}, but got ${JSON.stringify(norm)}; fix the file or pass the option.`);
  }
  const own: ClassifierOptions = {
    ...(md.bounds !== undefined ? { bounds: md.bounds } : {}),
    ...(md.normalization !== undefined ? { normalization: md.normalization } : {}),
    ...(md.inputRange !== undefined ? { inputRange: md.inputRange } : {}),
    ...(md.head !== undefined ? { head: md.head } : {}),
  };
  if (own.head !== undefined && typeof own.head !== 'string') throw new ModelError(`${where}: head must be a string naming an output, but got ${JSON.stringify(own.head)}.`);
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ClassifierOptions;
  return { ...own, ...defined };
}

/** The model directory a location names (a path to its model.json names its directory). */
export function modelDirectory(location: string): string {
  return path.resolve(location.endsWith('.json') ? path.dirname(location) : location);
}

/**
 * Loads either kind of model directory as a Classifier. Bounds, normalization, input range and
 * head come from the options, else from advkit.json beside the model, else [0, 1], none, the
 * model's own range and its only output. The classifier's source records the options, so a
 * worker pool builds the same classifier.
 */
export async function loadClassifier(location: string, options: ClassifierOptions = {}): Promise<{ classifier: Classifier; metadata?: ModelMetadata; model: tf.LayersModel | tf.GraphModel | OnnxModel }> {
  // The source records the options given, so a worker pool builds the same classifier.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ClassifierOptions;
  const sourceAt = (where: string) => ({ source: { location: where, ...(Object.keys(given).length ? { options: JSON.parse(JSON.stringify(given)) as ClassifierOptions } : {}) } });
  const onnxPath = await onnxFile(location);
  if (onnxPath) {
    const { model, external, metadata } = await readOnnxModel(onnxPath);
    return { classifier: { ...fromOnnx(model, { ...classifierOptionsFor(metadata, options, location), external }), ...sourceAt(path.resolve(onnxPath)) }, metadata, model };
  }
  const files = await readModelFiles(location);
  const md = files.metadata;
  const opts = classifierOptionsFor(md, options, location);
  const source = sourceAt(modelDirectory(location));
  try {
    if (files.format === 'graph-model') {
      const model = await tf.loadGraphModel(tf.io.fromMemory(files.artifacts));
      return { classifier: { ...fromGraphModel(model, opts), ...source }, metadata: md, model };
    }
    const model = await tf.loadLayersModel(tf.io.fromMemory(files.artifacts));
    return { classifier: { ...fromLayersModel(model, opts), ...source }, metadata: md, model };
  } catch (err) {
    if (err instanceof AdvkitError) throw err;
    throw new ModelError(`Error loading model ${location}: TensorFlow.js could not build it (${(err as Error).message.split('\n')[0]}).`, { cause: err });
  }
}

/** The ONNX model file at a location: a path to a .onnx file, or a directory holding model.onnx and no model.json. */
export async function onnxFile(location: string): Promise<string | undefined> {
  if (location.toLowerCase().endsWith('.onnx')) return location;
  const isFile = (p: string) => fsp.stat(p).then((st) => st.isFile(), () => false);
  if (!(await isFile(path.join(location, MODEL_JSON))) && (await isFile(path.join(location, ONNX_FILE)))) return path.join(location, ONNX_FILE);
  return undefined;
}

/**
 * Reads an ONNX model (protobuf, decoded with onnx-proto) as untrusted input: a regular file of
 * at most 2 GiB (protobuf's own limit) inside its directory; tensors in external data files are
 * read from paths confined to that directory, as regular files, only the bytes they name.
 */
export async function readOnnxModel(file: string): Promise<{ model: OnnxModel; external: (location: string, offset: number, length: number) => Uint8Array; metadata?: ModelMetadata }> {
  const dir = path.dirname(file);
  const bytes = await readModelFile(file, `ONNX model ${file}`, dir, { maxBytes: MAX_ONNX_BYTES });
  let model: OnnxModel;
  try {
    model = onnx.ModelProto.decode(bytes) as unknown as OnnxModel;
  } catch (err) {
    throw new ModelError(`Error loading ONNX model ${file}: it is not an ONNX ModelProto (${(err as Error).message}); the file is truncated or not a model.`);
  }
  if (!model.graph) throw new ModelError(`Error loading ONNX model ${file}: it holds no graph; it is not an ONNX model.`);
  const external = (location: string, offset: number, length: number): Uint8Array => {
    const full = confinedPath(dir, location);
    const real = realpathSync(full);
    const root = realpathSync(dir);
    if (!real.startsWith(root + path.sep)) throw new ModelError(`Error loading ONNX model ${file}: external data ${JSON.stringify(location)} is a link outside the model directory; refusing to read it.`);
    const st = statSync(real);
    if (!st.isFile()) throw new ModelError(`Error loading ONNX model ${file}: external data ${JSON.stringify(location)} is not a regular file; refusing to read it.`);
    const end = length < 0 ? st.size : offset + length;
    if (!(offset >= 0 && end <= st.size)) throw new ModelError(`Error loading ONNX model ${file}: external data ${JSON.stringify(location)} has ${st.size} bytes, not the ${offset}..${end} a tensor names; the files are truncated.`);
    const fd = openSync(real, 'r');
    try {
      const out = new Uint8Array(end - offset);
      readSync(fd, out, 0, out.length, offset);
      return out;
    } finally {
      closeSync(fd);
    }
  };
  const metaFile = path.join(dir, METADATA_JSON);
  const metadata = (await fsp.stat(metaFile).then((st) => st.isFile(), () => false)) ? (await readJson(metaFile, `model metadata ${file}`)) as ModelMetadata : undefined;
  return { model, external, metadata };
}

/** Saves a LayersModel as model.json + weights.bin (+ advkit.json when metadata is given). */
export async function saveLayersModel(model: tf.LayersModel, dir: string, metadata?: ModelMetadata): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = artifacts.weightData;
    const bytes = data === undefined ? new Uint8Array(0) : new Uint8Array(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
    await writeFileAtomic(path.join(dir, WEIGHTS_BIN), bytes);
    if (metadata) await writeFileAtomic(path.join(dir, METADATA_JSON), `${JSON.stringify(metadata, null, 2)}\n`);
    const json = {
      modelTopology: artifacts.modelTopology,
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
    };
    await writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON', weightDataBytes: bytes.length } };
  }));
}
