/**
 * The wasm backend on tfjs-backend-wasm's threaded build, under Node: XNNPACK's convolutions and
 * matrix products spread over a thread pool inside one call (ADVKIT_WASM_THREADS=n).
 *
 * tfjs ships that build with Emscripten's Node support (`wasm-out/tfjs-backend-wasm-threaded-simd.*`)
 * but never uses it under Node: its WASM_HAS_MULTITHREAD_SUPPORT flag is false there, its loader
 * hands the pthread script to Worker as a Blob URL (which Node's Worker cannot load), and the
 * script is packaged as a module exporting its source (`wasmWorkerContents`) rather than as a
 * file to run. And the build caps its threads at half the logical cores, read once when it
 * starts, so a 2-vCPU machine gets one. Here the build is loaded from its files: while its
 * factory runs, `worker_threads.Worker` starts the pthread script from that source (`eval`) and
 * `os.cpus()` reports enough cores for the threads asked for; both are restored as soon as it
 * has started. Then `new BackendWasm(module)` is registered as the `wasm` backend, as tfjs' own
 * loader does with the single-threaded build. Kernels, advkit's included, run unchanged (advkit's
 * SIMD kernels bind to the shared heap with the shared-memory variant of their module).
 *
 * XNNPACK splits each product over output tiles, so results are the same bits with any thread
 * count (tests/backend/wasm_threads.test.ts). Worker pools start their threads with one thread
 * each (backend/pool.ts), so pools and threads do not oversubscribe the cores.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);

/** What tfjs' loader adds to the Emscripten module (its `tfjs` namespace). */
interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: Record<string, (...a: number[]) => number>;
  PThread: { runningWorkers: Array<{ unref(): void }> };
}

let loaded: { threads: number } | undefined;

/** The threads of the loaded threaded build, or undefined when it is not in use. */
export function wasmThreads(): number | undefined {
  return loaded?.threads;
}

/**
 * Registers the threaded build with `threads` threads as the `wasm` backend (before it is first
 * used; once per process). Throws, leaving tfjs' single-threaded registration in place, when the
 * build cannot start here within `timeoutMs`.
 */
export async function registerThreadedWasm(threads: number, timeoutMs: number): Promise<void> {
  if (loaded) {
    if (loaded.threads !== threads) throw new Error(`the threaded wasm build is already running with ${loaded.threads} threads in this process`);
    return;
  }
  // Imported here, not at the top: importing tfjs-backend-wasm registers it as the preferred
  // backend, which no module of advkit's may do before initBackend asks for it.
  const { BackendWasm: Backend, setThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  const js = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const dir = path.dirname(js);
  // The packaged source turned the script's "\n" escapes into newlines inside string literals.
  const source = (require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string }).wasmWorkerContents.replace(/"\n"/g, '"\\n"');
  const factory = require(js) as (config: object) => Promise<ThreadedModule>;
  const workerThreads = require('node:worker_threads') as { Worker: new (file: string, options?: object) => object };
  const os = require('node:os') as { cpus: () => unknown[] };
  const [Worker, cpus] = [workerThreads.Worker, os.cpus];
  workerThreads.Worker = class extends (Worker as new (file: string, options?: object) => object) {
    constructor(file: string, options?: object) {
      // No inherited execArgv: --input-type=module would make the script an ES module, without require.
      if (String(file).endsWith('.worker.js')) super(source, { ...options, eval: true, execArgv: [] });
      else super(file, options);
    }
  };
  const cpu = cpus()[0];
  os.cpus = () => Array.from({ length: 2 * threads }, () => cpu);
  // Emscripten fills the config object in as the module (PThread included) while it starts.
  const config = { locateFile: (p: string) => path.join(dir, p), mainScriptUrlOrBlob: js } as Record<string, unknown>;
  let module: ThreadedModule;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    module = await Promise.race([
      factory(config),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`its threads did not start within ${timeoutMs / 1000} s`)), timeoutMs); }),
    ]);
  } catch (err) {
    (config.PThread as { terminateAllThreads?: () => void } | undefined)?.terminateAllThreads?.();
    throw err;
  } finally {
    clearTimeout(timer);
    workerThreads.Worker = Worker;
    os.cpus = cpus;
  }
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => {
    const backend = new Backend(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
    // The pool's threads wait on the shared heap for work for as long as the process lives;
    // Emscripten keeps each running thread's Worker referenced, which would keep Node from exiting.
    for (const w of module.PThread.runningWorkers) w.unref();
    return backend;
  }, 2);
  loaded = { threads };
}
