/**
 * onnxruntime-node, the optional native engine: loaded on demand (it is an optional dependency;
 * where it is absent, or its binding does not load, the reason is kept for `advkit info`),
 * sessions built from ONNX bytes with the execution providers of `ADVKIT_ORT_PROVIDERS`
 * (default `cpu`; e.g. `cuda,cpu` where the CUDA provider was installed) on
 * `ADVKIT_ORT_THREADS` intra-op threads (default: the cores). Its `run` is asynchronous.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { BackendError, InvalidArgumentError, show } from '../util/errors.js';

const require = createRequire(import.meta.url);

/** The part of onnxruntime-node advkit uses. */
export interface OrtTensor { readonly data: unknown; readonly dims: readonly number[]; dispose?(): void }
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
  readonly outputNames: readonly string[];
}
interface OrtModule {
  InferenceSession: { create(bytes: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensor;
  env: { versions?: Record<string, string>; logLevel?: string };
  listSupportedBackends?: () => Array<{ name: string }>;
}

let loaded: { ort?: OrtModule; why?: string } | undefined;

export const ORT_NOT_INSTALLED = 'onnxruntime-node is not installed (npm install onnxruntime-node; advkit lists it as an optional dependency)';

/** onnxruntime-node, or why it cannot be used. */
export function loadOrt(): { ort?: OrtModule; why?: string } {
  if (loaded) return loaded;
  try {
    require.resolve('onnxruntime-node/package.json');
  } catch {
    return (loaded = { why: ORT_NOT_INSTALLED });
  }
  try {
    const ort = require('onnxruntime-node') as OrtModule;
    ort.env.logLevel = 'error';
    return (loaded = { ort });
  } catch (err) {
    return (loaded = { why: `onnxruntime-node is installed but its native binding did not load: ${(err as Error).message.split('\n')[0]}` });
  }
}

/** onnxruntime-node with the providers asked for, or why it cannot be used (a bad ADVKIT_ORT_PROVIDERS throws). */
export function ortBackendProblem(): string | undefined {
  const { ort, why } = loadOrt();
  if (!ort) return why;
  ortThreads();
  return providersProblem(ort);
}

export const ORT_PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'coreml', 'dml'] as const;

/** The execution providers from ADVKIT_ORT_PROVIDERS (comma-separated, in order of preference). */
export function ortProviders(value = process.env.ADVKIT_ORT_PROVIDERS): string[] {
  if (value === undefined || value.trim() === '') return ['cpu'];
  const list = value.split(',').map((s) => s.trim().toLowerCase());
  for (const p of list) {
    if (!(ORT_PROVIDERS as readonly string[]).includes(p)) throw new InvalidArgumentError(`Error in ADVKIT_ORT_PROVIDERS: unknown execution provider ${show(p)}; use a comma-separated list of ${ORT_PROVIDERS.join(', ')} (e.g. cuda,cpu).`);
  }
  return list;
}

/**
 * Why the providers asked for cannot run here, or undefined when they can: each must be one this
 * onnxruntime-node build lists, and one it does not bundle (CUDA, TensorRT) must have had its
 * binaries installed (advkit skips that download at install: see the README).
 */
export function providersProblem(ort: OrtModule, providers = ortProviders()): string | undefined {
  const listed = ort.listSupportedBackends?.() as Array<{ name: string; bundled?: boolean }> | undefined;
  if (!listed) return undefined;
  const binDir = path.dirname(require.resolve('onnxruntime-node/package.json'));
  for (const p of providers) {
    const entry = listed.find((e) => e.name === p);
    if (!entry) return `ADVKIT_ORT_PROVIDERS asks for '${p}', which this onnxruntime-node build does not offer (it offers ${listed.map((e) => e.name).join(', ')})`;
    if (entry.bundled === false) {
      const lib = `libonnxruntime_providers_${p}.so`;
      const dir = path.join(binDir, 'bin', 'napi-v6', process.platform, process.arch);
      if (!fs.existsSync(path.join(dir, lib))) return `ADVKIT_ORT_PROVIDERS asks for '${p}', but its binaries (${lib}) are not installed: advkit skips their download at install; run 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node' where api.nuget.org is reachable`;
    }
  }
  return undefined;
}

/** Intra-op threads per session (ADVKIT_ORT_THREADS, default the cores). */
export function ortThreads(value = process.env.ADVKIT_ORT_THREADS): number {
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  if (value === undefined || value.trim() === '') return cores;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError(`Error in ADVKIT_ORT_THREADS: ${show(value)} is not a thread count; use an integer from 1 to 256 (default: the ${cores} cores).`);
  return n;
}

/** A session for an ONNX model (bytes); throws a BackendError saying why it cannot be built. */
export async function createSession(bytes: Uint8Array, threads = ortThreads()): Promise<OrtSession> {
  const { ort, why } = loadOrt();
  if (!ort) throw new BackendError(`Error in the onnxruntime backend: ${why}.`);
  return ort.InferenceSession.create(bytes, {
    executionProviders: ortProviders(),
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

export function ortTensor(data: Float32Array | BigInt64Array, dims: readonly number[]): OrtTensor {
  const { ort } = loadOrt();
  return new ort!.Tensor(data instanceof Float32Array ? 'float32' : 'int64', data, dims);
}
