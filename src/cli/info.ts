/** `advkit info`: the backend in use, versions, SIMD and threads, cores, available backends. */
import { Command } from 'commander';
import { backendInfo } from '../backend/index.js';
import { action, printJson, startBackend, withCommonOptions } from './common.js';

export function infoCommand(): Command {
  return withCommonOptions(new Command('info'))
    .action(action(async (opts: { backend?: string; json?: boolean }) => {
      await startBackend(opts.backend);
      const info = await backendInfo();
      if (opts.json) return printJson(info);
      const yes = (v: boolean | null) => (v === null ? 'n/a' : v ? 'yes' : 'no');
      const lines = [
        `backend      ${info.backend}${info.requested === 'auto' ? ' (auto)' : ''}`,
        `advkit       ${info.versions.advkit}`,
        `tfjs         ${info.versions['tfjs-core']}`,
        `node         ${info.node} (${info.platform})`,
        `cores        ${info.cores}`,
        `wasm SIMD    ${yes(info.simd)}`,
        `wasm threads ${info.threads === null ? 'n/a' : info.threads}${info.threads === 1 ? ' (ADVKIT_WASM_THREADS=n runs XNNPACK on n threads per call)' : ''}`,
        ...(info.onnxruntime ? [`onnxruntime  ${info.versions['onnxruntime-node']}, providers ${info.onnxruntime.providers.join(',')} (ADVKIT_ORT_PROVIDERS), ${info.onnxruntime.threads} threads (ADVKIT_ORT_THREADS); models run on it, other tensors on wasm`] : []),
        'available:',
        ...Object.entries(info.available).map(([name, a]) => `  ${name.padEnd(12)}${a.available ? 'yes' : `no: ${a.reason}`}`),
      ];
      if (info.wasmKernels.length) lines.push(`advkit wasm kernels: ${info.wasmKernels.join(', ')}`);
      if (info.advkitSimd !== null) lines.push(`advkit SIMD kernels: ${info.advkitSimd ? 'yes' : 'no (JavaScript fallbacks)'}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }));
}
