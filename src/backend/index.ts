/**
 * Backend selection. `auto` tries `onnxruntime` (onnxruntime-node's native kernels for the
 * compiled models' forward and input gradients, models/native.ts, with `wasm` for every other
 * tensor), then `tensorflow` (native libtensorflow through @tensorflow/tfjs-node-gpu or
 * @tensorflow/tfjs-node), then `wasm` (XNNPACK + SIMD, with advkit's backward kernels
 * registered), then `cpu` (pure JS). `ADVKIT_BACKEND` or an
 * explicit name forces one; a forced backend that cannot load is an error that says why,
 * never a silent fallback. The library never prints: notes come back in the result.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { BackendError, InvalidArgumentError, show } from '../util/errors.js';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { FUSED_OPS } from './fused.js';
import { simdKernels } from './simd.js';
import { heap } from './kernels/heap.js';
import { registerCpuKernels, registerWasmKernels, WASM_KERNELS } from './kernels/register_all_kernels.js';
export { setWasmKernelMode, type WasmKernelMode } from './kernels/register_all_kernels.js';
import { ADVKIT_VERSION } from '../util/version.js';
import { registerThreadedWasm, wasmThreads } from './wasm_threads.js';
import { loadOrt, ortBackendProblem, ORT_NOT_INSTALLED, ortProviders, ortThreads } from './onnxruntime.js';

export const BACKENDS = ['auto', 'onnxruntime', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendStatus {
  /** The backend in use. */
  name: BackendName;
  /** What was asked for. */
  requested: BackendChoice;
  /** One line each: why `auto` skipped a backend that is installed (for the user to see). */
  notes: string[];
  /** Why `auto` skipped each backend it tried before the one in use. */
  skipped: Partial<Record<BackendName, string>>;
}

const require = createRequire(import.meta.url);
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let current: BackendStatus | undefined;
const NOT_INSTALLED = 'neither @tensorflow/tfjs-node nor @tensorflow/tfjs-node-gpu is installed (npm install @tensorflow/tfjs-node where its install-time libtensorflow download can run)';

function nodeMajor(): number {
  return Number(process.versions.node.split('.')[0]);
}

function isInstalled(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

/** Tries to load a native binding; returns the reason it cannot, or undefined when loaded. */
async function loadNative(): Promise<string | undefined> {
  const installed = NATIVE_PACKAGES.filter(isInstalled);
  if (installed.length === 0) return NOT_INSTALLED;
  if (nodeMajor() >= 23) {
    return `${installed[0]} 4.22 crashes on Node ${process.versions.node} (it calls util.isNullOrUndefined, removed in Node 23): use Node 20 or 22`;
  }
  const reasons: string[] = [];
  for (const pkg of installed) {
    try {
      await import(/* @vite-ignore */ pkg);
      if (tf.findBackend('tensorflow')) return undefined;
      reasons.push(`${pkg} loaded but registered no 'tensorflow' backend`);
    } catch (err) {
      const why = firstLine(err);
      const hint = pkg.endsWith('-gpu') ? ' (the GPU build needs CUDA 11.2 and cuDNN 8.1 libraries)' : ' (its install script downloads libtensorflow; it fails where that host is unreachable)';
      reasons.push(`${pkg} is installed but failed to load: ${why}${hint}`);
    }
  }
  return reasons.join('; ');
}

/**
 * Threads for XNNPACK inside each wasm call: ADVKIT_WASM_THREADS, else the cores (at most 8, the
 * threaded build's pool). One is tfjs' own single-threaded build; more load its threaded build
 * (wasm_threads.ts). Worker pools give each of their threads one.
 */
export function wasmThreadsRequested(): number {
  const raw = process.env.ADVKIT_WASM_THREADS;
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  if (raw === undefined || raw.trim() === '') return Math.max(1, Math.min(8, cores));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new InvalidArgumentError(`Error in ADVKIT_WASM_THREADS: ${show(raw)} is not a thread count from 1 to 8; unset it (one per core) or set e.g. ADVKIT_WASM_THREADS=1.`);
  }
  return n;
}

/** The threaded build's start-up, bounded: a build that cannot start its threads would otherwise wait for them forever. */
const THREADED_START_MS = 30_000;

async function loadWasm(notes: string[]): Promise<string | undefined> {
  const threads = wasmThreadsRequested();
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm failed to load: ${firstLine(err)}`;
  }
  if (threads > 1) {
    try {
      await registerThreadedWasm(threads, THREADED_START_MS);
    } catch (err) {
      // tfjs' single-threaded build is still registered: the backend works, on one thread.
      notes.push(`wasm runs on one thread: its threaded build (ADVKIT_WASM_THREADS=${threads}) did not start: ${firstLine(err)}`);
    }
  }
  registerWasmKernels();
  return undefined;
}

async function activate(name: BackendName): Promise<string | undefined> {
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    // The cpu backend prints a "install tfjs-node" banner on first use; the library never prints.
    if (ok && name === 'cpu') {
      (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
      registerCpuKernels();
    }
    return ok ? undefined : `tf.setBackend('${name}') failed to initialise the backend`;
  } catch (err) {
    return `the ${name} backend failed to initialise: ${firstLine(err)}`;
  }
}

/** Parses a backend name from an option or ADVKIT_BACKEND. */
export function parseBackend(value: string | undefined, source = 'backend'): BackendChoice {
  const v = (value ?? 'auto').trim().toLowerCase();
  if ((BACKENDS as readonly string[]).includes(v)) return v as BackendChoice;
  throw new InvalidArgumentError(`Error in ${source}: unknown backend ${show(value)}; use one of ${BACKENDS.join(', ')}.`);
}

/**
 * Selects and initialises a backend. `requested` defaults to `ADVKIT_BACKEND`, then `auto`.
 * Calling it again with the same request is free; with another, it switches.
 */
export async function initBackend(requested?: BackendChoice | string): Promise<BackendStatus> {
  // Emscripten's wasm builds add process-wide 'uncaughtException' / 'unhandledRejection' handlers
  // that rethrow, so any later uncaught error of the application prints a line of minified
  // tfjs source instead of its own stack: the library leaves the process's handlers as it found them.
  const emitter = process as unknown as NodeJS.EventEmitter;
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = events.map((e) => new Set(emitter.listeners(e)));
  try {
    return await initBackendOnce(requested);
  } finally {
    events.forEach((e, i) => { for (const l of emitter.listeners(e)) if (!before[i]!.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void); });
  }
}

async function initBackendOnce(requested?: BackendChoice | string): Promise<BackendStatus> {
  const choice = parseBackend(requested ?? process.env.ADVKIT_BACKEND, requested === undefined && process.env.ADVKIT_BACKEND !== undefined ? 'ADVKIT_BACKEND' : 'backend');
  if (current && current.requested === choice && tf.getBackend() === tensorBackend(current.name)) return current;
  const notes: string[] = [];
  const skipped: Partial<Record<BackendName, string>> = {};
  const order: BackendName[] = choice === 'auto' ? ['onnxruntime', 'tensorflow', 'wasm', 'cpu'] : [choice];
  for (const name of order) {
    let why: string | undefined;
    if (name === 'onnxruntime') why = ortBackendProblem();
    if (name === 'tensorflow') why = await loadNative();
    else if (name === 'wasm' || (name === 'onnxruntime' && !why)) why = await loadWasm(notes);
    if (!why) why = await activate(tensorBackend(name));
    if (!why) {
      current = { name, requested: choice, notes, skipped };
      return current;
    }
    if (choice !== 'auto') {
      throw new BackendError(`Error in initBackend: the '${name}' backend was asked for but cannot be used: ${why}. Use --backend auto (or unset ADVKIT_BACKEND) to fall back.`);
    }
    // A native package that is simply not installed is the normal case, not worth a note.
    if (!(name === 'tensorflow' && why === NOT_INSTALLED) && !(name === 'onnxruntime' && why === ORT_NOT_INSTALLED)) notes.push(`${name} backend not used: ${why}`);
    skipped[name] = why;
  }
  throw new BackendError(`Error in initBackend: no backend could be initialised: ${notes.join('; ')}`);
}

/**
 * Copies a float32 tensor's values into `out` at `at`. On wasm straight from the heap: `data()`
 * would first copy them into a fresh array, and fresh memory is slow to fault in on some VMs
 * (a 45 MB copy of ResNet-18's weights: ~115 ms into fresh memory, ~3 ms into reused memory).
 */
export function readInto(t: tf.Tensor, out: Float32Array, at: number): void {
  if (t.dtype === 'float32' && tf.getBackend() === 'wasm') {
    out.set(heap(tf.backend() as BackendWasm, t), at);
  } else {
    out.set(t.dataSync() as Float32Array, at);
  }
}

/** The tfjs backend that holds the tensors of advkit backend `name` (onnxruntime runs models only: wasm holds the rest). */
export function tensorBackend(name: BackendName): Exclude<BackendName, 'onnxruntime'> {
  return name === 'onnxruntime' ? 'wasm' : name;
}

/** The status of the last `initBackend`, or undefined before one. */
export function backendStatus(): BackendStatus | undefined {
  return current;
}

export interface BackendInfo {
  backend: BackendName;
  requested: BackendChoice;
  notes: string[];
  versions: Record<string, string>;
  node: string;
  platform: string;
  cores: number;
  simd: boolean | null;
  /** XNNPACK threads inside each wasm call (ADVKIT_WASM_THREADS; null off wasm). */
  threads: number | null;
  /** On the onnxruntime backend: its execution providers (ADVKIT_ORT_PROVIDERS) and intra-op threads (ADVKIT_ORT_THREADS). */
  onnxruntime: { providers: string[]; threads: number } | null;
  available: Record<BackendName, { available: boolean; reason?: string }>;
  wasmKernels: readonly string[];
  /** advkit's SIMD kernels (simd_kernels.wat) run on this wasm backend's heap (null off wasm). */
  advkitSimd: boolean | null;
}

/** What `advkit info` reports: the backend in use, versions, SIMD/threads, what else could run. */
export async function backendInfo(): Promise<BackendInfo> {
  const status = current ?? (await initBackend());
  let simd: boolean | null = null;
  let threads: number | null = null;
  const onWasm = tensorBackend(status.name) === 'wasm';
  if (onWasm) {
    simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    threads = wasmThreads() ?? 1;
  }
  const nativeWhy = status.name === 'tensorflow' ? undefined : status.skipped.tensorflow ?? (NATIVE_PACKAGES.some(isInstalled) ? 'not tried (another backend was forced)' : NOT_INSTALLED);
  const wasmOk = isInstalled('@tensorflow/tfjs-backend-wasm');
  const ort = loadOrt();
  return {
    backend: status.name,
    requested: status.requested,
    notes: status.notes,
    versions: { ...(tf.version as Record<string, string>), ...(ort.ort?.env.versions?.node ? { 'onnxruntime-node': ort.ort.env.versions.node } : {}), advkit: ADVKIT_VERSION },
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    simd,
    threads,
    onnxruntime: status.name === 'onnxruntime' ? { providers: ortProviders(), threads: ortThreads() } : null,
    available: {
      onnxruntime: ort.ort ? { available: true } : { available: false, reason: ort.why! },
      tensorflow: nativeWhy ? { available: false, reason: nativeWhy } : { available: true },
      wasm: wasmOk ? { available: true } : { available: false, reason: '@tensorflow/tfjs-backend-wasm is not installed' },
      cpu: { available: true },
    },
    wasmKernels: onWasm ? [...WASM_KERNELS, ...FUSED_OPS] : [],
    advkitSimd: onWasm ? simdKernels(tf.backend() as unknown as BackendWasm) !== null : null,
  };
}

