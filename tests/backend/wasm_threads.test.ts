import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promises as fsp } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { advkit, expectUsageError, tempDirWithModel } from '../cli/run.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * A PGD run in a fresh process with `threads` XNNPACK threads (ADVKIT_WASM_THREADS): the
 * backend's thread count and a digest of the adversarial batch, for architectures that use the
 * compiler's whole kernel set (batch norm folding, depthwise convs, ReLU6 masks, residual adds,
 * max-pool gradients, convs run as dense products on 2x2 maps).
 */
function pgdDigest(threads: number): { threads: number; simd: boolean; digests: string[] } {
  const script = `
    import { createHash } from 'node:crypto';
    import * as tf from '@tensorflow/tfjs';
    import { backendInfo, initBackend } from './dist/src/backend/index.js';
    import { buildArchitecture } from './dist/src/models/architectures.js';
    import { fromLayersModel } from './dist/src/models/classifier.js';
    import { pgd } from './dist/src/attacks/pgd.js';
    await initBackend('wasm');
    const info = await backendInfo();
    const digests = [];
    for (const [arch, options] of [['mobilenet-v2', { inputShape: [32, 32, 3], alpha: 0.35 }], ['resnet-18', { inputShape: [32, 32, 3], variant: 'imagenet' }]]) {
      const model = fromLayersModel(buildArchitecture(arch, { seed: 4, ...options }));
      const x = tf.randomUniform([6, 32, 32, 3], 0, 1, 'float32', 7);
      const y = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
      const r = await pgd(model, x, y, { eps: 8 / 255, steps: 3, seed: 2 });
      digests.push(createHash('sha256').update(Buffer.from((await r.adversarial.data()).buffer)).digest('hex'));
    }
    process.stdout.write(JSON.stringify({ threads: info.threads, simd: info.advkitSimd, digests }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, ADVKIT_WASM_THREADS: String(threads) }, timeout: 240_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { threads: number; simd: boolean; digests: string[] };
}

describe('the threaded wasm build (ADVKIT_WASM_THREADS)', () => {
  it('runs XNNPACK on the threads asked for, with advkit\'s SIMD kernels on its shared heap, and gives the same bytes as one thread (PGD on MobileNetV2 and ResNet-18); the process exits by itself', () => {
    const one = pgdDigest(1);
    const two = pgdDigest(2);
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(two.simd).toBe(true);
    expect(two.digests).toEqual(one.digests);
  });

  it('the CLI reports the thread count; a data-set attack gives the same files on one thread, two threads, and two workers', async () => {
    const { dir, model } = await tempDirWithModel('advkit-threads-', 'mnist-cnn', 3);
    const info = advkit(['info', '--json', '--backend', 'wasm'], { ADVKIT_WASM_THREADS: '2' }, 60_000);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).threads).toBe(2);
    const run = (name: string, env: Record<string, string>, extra: string[] = []) => {
      const out = path.join(dir, name);
      const r = advkit(['attack', '--model', model, '--data', 'mnist', '--limit', '24', '--attack', 'pgd', '--eps', '0.2', '--steps', '3', '--batch-size', '8', '--format', 'npy', '--out', out, '--backend', 'wasm', ...extra], env, 120_000);
      expect(r.code, r.stderr).toBe(0);
      return fsp.readFile(path.join(out, 'x_adv.npy'));
    };
    const [a, b, c] = [await run('one', { ADVKIT_WASM_THREADS: '1' }), await run('two', { ADVKIT_WASM_THREADS: '2' }), await run('workers', { ADVKIT_WASM_THREADS: '2' }, ['--workers', '2'])];
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
  });

  it('a thread count outside 1..8 is a usage error naming ADVKIT_WASM_THREADS', () => {
    for (const bad of ['0', '9', 'two', '1.5']) expectUsageError(['info'], /ADVKIT_WASM_THREADS.*thread count from 1 to 8/, { ADVKIT_WASM_THREADS: bad });
  });
});
