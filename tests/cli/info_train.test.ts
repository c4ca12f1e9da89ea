import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { encodeNpy } from '../../src/data/npy.js';
import { loadMnist, take } from '../../src/data/index.js';
import { advkit, expectUsageError } from './run.js';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-cli-'));
});


describe('advkit info', () => {
  it('reports the backend auto chose (onnxruntime where installed), SIMD, cores and available backends (--json)', () => {
    const r = advkit(['info', '--json'], { ADVKIT_BACKEND: 'auto' });
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    // auto prefers onnxruntime, then tensorflow, then wasm.
    const expected = info.available.onnxruntime.available ? 'onnxruntime' : info.available.tensorflow.available ? 'tensorflow' : 'wasm';
    expect(info.backend).toBe(expected);
    expect(info.cores).toBeGreaterThan(0);
    const onWasm = info.backend === 'wasm' || info.backend === 'onnxruntime';
    expect(typeof info.simd).toBe(onWasm ? 'boolean' : 'object');
    // Where wasm has SIMD, advkit's own SIMD kernels must load on its heap (else a silent slow path).
    if (onWasm) expect(info.advkitSimd).toBe(info.simd);
    if (onWasm) expect(info.wasmKernels).toContain('AdvkitConv2D');
    if (info.backend === 'onnxruntime') {
      expect(info.onnxruntime).toEqual({ providers: ['cpu'], threads: Number(process.env.ADVKIT_ORT_THREADS ?? info.cores) });
      expect(info.versions['onnxruntime-node']).toMatch(/^\d+\.\d+\.\d+$/);
    } else expect(info.onnxruntime).toBeNull();
    expect(info.versions['tfjs-core']).toBe('4.22.0');
  });

  it('ADVKIT_ORT_PROVIDERS and ADVKIT_ORT_THREADS: bad values are one line naming the variable; a provider whose binaries are absent is refused, or skipped by auto with a note', () => {
    expectUsageError(['info'], /ADVKIT_ORT_PROVIDERS: unknown execution provider "gpu"/, { ADVKIT_ORT_PROVIDERS: 'gpu' });
    expectUsageError(['info', '--backend', 'onnxruntime'], /ADVKIT_ORT_THREADS: "0" is not a thread count/, { ADVKIT_ORT_THREADS: '0' });
    const r = advkit(['info', '--json'], { ADVKIT_ORT_PROVIDERS: 'cuda,cpu' });
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    if (info.available.onnxruntime.available && info.backend !== 'onnxruntime') {
      expect(info.notes.join('\n')).toMatch(/onnxruntime backend not used: ADVKIT_ORT_PROVIDERS asks for 'cuda', but its binaries \(libonnxruntime_providers_cuda.so\) are not installed/);
      const forced = advkit(['info', '--backend', 'onnxruntime'], { ADVKIT_ORT_PROVIDERS: 'cuda,cpu' });
      expect(forced.code).toBe(2);
      expect(forced.stderr).toMatch(/the 'onnxruntime' backend was asked for but cannot be used: .*ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
    }
  });

  it('prints a readable summary without --json', () => {
    const r = advkit(['info', '--backend', 'cpu']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backend\s+cpu/m);
  });

  it('asking for tensorflow where it cannot load is an error that says why, never a fallback', () => {
    const r = advkit(['info', '--json'], { ADVKIT_BACKEND: 'tensorflow' });
    if (r.code === 0) {
      expect(JSON.parse(r.stdout).backend).toBe('tensorflow');
    } else {
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/the 'tensorflow' backend was asked for but cannot be used: .+/);
    }
  });

  it('rejects an unknown backend name', () => {
    expectUsageError(['info', '--backend', 'gpu'], /unknown backend "gpu"; use one of auto, onnxruntime, tensorflow, wasm, cpu/);
    expectUsageError(['info'], /ADVKIT_BACKEND: unknown backend "webgl"/, { ADVKIT_BACKEND: 'webgl' });
  });
});

describe('advkit train: bad inputs', () => {
  it('unknown data spec', () => expectUsageError(['train', '--arch', 'mlp', '--data', 'cifar10', '--out', path.join(dir, 'o1')], /data spec "cifar10": unknown data source/));
  it('unknown architecture', () => expectUsageError(['train', '--arch', 'vgg', '--data', 'mnist', '--out', path.join(dir, 'o2')], /unknown architecture "vgg"; use one of mnist-cnn/));
  it('negative epochs', () => expectUsageError(['train', '--arch', 'mlp', '--data', 'mnist', '--epochs', '-1', '--out', path.join(dir, 'o3')], /--epochs <n>.*-1.*must be between 1/));
  it('missing IDX files', () => expectUsageError(['train', '--arch', 'mlp', '--data', `idx:${dir}/none.idx,${dir}/none2.idx`, '--out', path.join(dir, 'o4')], /none.idx: no such file/));
  it('missing Fashion-MNIST files say how to install them', () => expectUsageError(['train', '--arch', 'mlp', '--data', 'fashion-mnist', '--data-dir', path.join(dir, 'nowhere'), '--out', path.join(dir, 'o5')], /apt-get install dataset-fashion-mnist/));
  it('corrupt IDX files', async () => {
    await fsp.writeFile(path.join(dir, 'bad.idx'), 'this is not idx');
    expectUsageError(['train', '--arch', 'mlp', '--data', `idx:${dir}/bad.idx,${dir}/bad.idx`, '--out', path.join(dir, 'o6')], /bad magic number/);
  });
  it('an image folder with a non-image file', async () => {
    const root = path.join(dir, 'imgs');
    await fsp.mkdir(path.join(root, 'a'), { recursive: true });
    await sharp(Buffer.alloc(64), { raw: { width: 8, height: 8, channels: 1 } }).png().toFile(path.join(root, 'a', '0.png'));
    await fsp.writeFile(path.join(root, 'a', 'readme.txt'), 'x');
    expectUsageError(['train', '--arch', 'mlp', '--data', `folder:${root}`, '--out', path.join(dir, 'o7')], /readme.txt is not an image/);
  });
});

/** The first n MNIST training digits as x<tag>.npy and y<tag>.npy in the test directory. */
async function mnistNpy(n: number, tag: string): Promise<[string, string]> {
  const ds = take(loadMnist('train'), n);
  const x = path.join(dir, `x${tag}.npy`);
  const y = path.join(dir, `y${tag}.npy`);
  await fsp.writeFile(x, encodeNpy(ds.images, [n, 28, 28, 1]));
  await fsp.writeFile(y, encodeNpy(ds.labels, [n]));
  return [x, y];
}

describe('advkit train', () => {
  it('trains, saves model + metadata, prints a summary and refuses to overwrite without --force', async () => {
    const [x, y] = await mnistNpy(300, '');
    const out = path.join(dir, 'model');
    const args = ['train', '--arch', 'mlp', '--data', `npy:${x},${y}`, '--epochs', '2', '--batch-size', '50', '--out', out, '--json', '--backend', 'wasm'];
    const r = advkit(args);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.heldOutAccuracy).toBeGreaterThan(0.3);
    expect(r.stderr).toMatch(/epoch 2\/2: loss/);
    const files = (await fsp.readdir(out)).sort();
    expect(files).toEqual(['advkit.json', 'model.json', 'weights.bin']);
    const md = JSON.parse(await fsp.readFile(path.join(out, 'advkit.json'), 'utf8'));
    expect(md.architecture).toBe('mlp');
    expect(md.training.epochs).toBe(2);
    expect(md.training.seed).toBe(0);
    expect(md.training.heldOutAccuracy).toBe(summary.heldOutAccuracy);
    expectUsageError(args, /already holds a trained model; choose another directory or pass --force/);
    expect(advkit([...args, '--force']).code).toBe(0);
  });

  it('trains the same weights, byte for byte, on 1 or 2 worker threads; refuses --shards 0', async () => {
    const [x, y] = await mnistNpy(200, 'w');
    const weights = async (workers: number) => {
      const out = path.join(dir, `model-w${workers}`);
      const r = advkit(['train', '--arch', 'mnist-cnn', '--data', `npy:${x},${y}`, '--epochs', '1', '--batch-size', '40', '--workers', String(workers), '--out', out, '--json', '--backend', 'wasm']);
      expect(r.code, r.stderr).toBe(0);
      if (workers > 1) expect(r.stderr).toMatch(/training on 2 worker threads \(2 shards per batch\)/);
      return fsp.readFile(path.join(out, 'weights.bin'));
    };
    expect((await weights(2)).equals(await weights(1))).toBe(true);
    expectUsageError(['train', '--arch', 'mlp', '--data', 'mnist', '--shards', '0', '--out', path.join(dir, 'no')], /--shards/);
  });

  it('a batch-norm model trains in one shard by default, and with --shards 2 the same weights on 1 or 2 workers', async () => {
    const [x, y] = await mnistNpy(80, 'b');
    const run = async (name: string, extra: string[]) => {
      const out = path.join(dir, name);
      const r = advkit(['train', '--arch', 'resnet-small', '--data', `npy:${x},${y}`, '--epochs', '1', '--batch-size', '40', '--out', out, '--json', '--backend', 'wasm', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      const md = JSON.parse(await fsp.readFile(path.join(out, 'advkit.json'), 'utf8'));
      return { stderr: r.stderr, shards: md.training.shards as number, weights: await fsp.readFile(path.join(out, 'weights.bin')) };
    };
    const plain = await run('bn-default', ['--workers', '2']);
    expect(plain.shards).toBe(1);
    expect(plain.stderr).not.toMatch(/worker threads/);
    const two = await run('bn-w2', ['--shards', '2', '--workers', '2']);
    const one = await run('bn-w1', ['--shards', '2', '--workers', '1']);
    expect(two.stderr).toMatch(/training on 2 worker threads \(2 shards per batch\)/);
    expect([two.shards, one.shards]).toEqual([2, 2]);
    expect(two.weights.equals(one.weights)).toBe(true);
    expect(two.weights.equals(plain.weights)).toBe(false);
  });
});
