import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { batches, encodeNpy, loadDataset, loadMnist, parseDataSpec, parseNpy, shuffle, size, split } from '../../src/data/index.js';
import { DataError, InvalidArgumentError } from '../../src/util/errors.js';
import { npyHeader, parseNpyFloat32 } from '../../src/data/npy.js';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'advkit-data-'));
});

function idx(dims: number[], data: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 8, dims.length]);
  const v = new DataView(out.buffer);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

describe('mnist', () => {
  it('has a fixed split of 7,996 train and 2,004 test images, disjoint and covering all 10,000', () => {
    const train = loadMnist('train');
    const test = loadMnist('test');
    expect(size(train)).toBe(7996);
    expect(size(test)).toBe(2004);
    const ids = new Set([...train.ids, ...test.ids]);
    expect(ids.size).toBe(10000);
    expect(train.shape).toEqual([28, 28, 1]);
    // The fixed order puts every class in any reasonable prefix.
    expect(new Set(test.labels.subarray(0, 100)).size).toBe(10);
    expect(Array.from(loadMnist('test').ids.subarray(0, 20))).toEqual(Array.from(test.ids.subarray(0, 20)));
  });
});

describe('data specs', () => {
  it('parses every source kind', () => {
    expect(parseDataSpec('mnist:train')).toEqual({ kind: 'mnist', split: 'train' });
    expect(parseDataSpec('fashion-mnist')).toEqual({ kind: 'fashion-mnist', split: undefined });
    expect(parseDataSpec('idx:a.gz,b.gz')).toEqual({ kind: 'idx', images: 'a.gz', labels: 'b.gz' });
    expect(parseDataSpec('npy:x.npy,y.npy')).toEqual({ kind: 'npy', images: 'x.npy', labels: 'y.npy' });
    expect(parseDataSpec('folder:imgs')).toEqual({ kind: 'folder', dir: 'imgs' });
  });

  it('rejects an unknown spec, naming it and listing the valid forms', () => {
    expect(() => parseDataSpec('cifar10')).toThrow(InvalidArgumentError);
    expect(() => parseDataSpec('cifar10')).toThrow(/data spec "cifar10": unknown data source; use mnist\[:train\|:test\]/);
    expect(() => parseDataSpec('idx:onlyone')).toThrow(/two files separated by a comma/);
  });

  it('a missing Fashion-MNIST directory says how to install it', async () => {
    await expect(loadDataset('fashion-mnist', { dataDir: path.join(dir, 'none') })).rejects.toThrow(/apt-get install dataset-fashion-mnist/);
  });
});

describe('IDX files', () => {
  it('reads gzipped and raw IDX pairs as [0,1] floats', async () => {
    const images = idx([2, 2, 2], [0, 255, 51, 102, 255, 0, 0, 0]);
    const labels = idx([2], [1, 0]);
    await fsp.writeFile(path.join(dir, 'img.idx.gz'), gzipSync(images));
    await fsp.writeFile(path.join(dir, 'lab.idx'), labels);
    const ds = await loadDataset(`idx:${path.join(dir, 'img.idx.gz')},${path.join(dir, 'lab.idx')}`);
    expect(ds.shape).toEqual([2, 2, 1]);
    expect(Array.from(ds.images)).toEqual([0, 1, 0.2, 0.4, 1, 0, 0, 0].map((v) => Math.fround(v)));
    expect(Array.from(ds.labels)).toEqual([1, 0]);
  });

  it('reports truncated, corrupt and missing IDX files as DataError', async () => {
    const good = idx([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    await fsp.writeFile(path.join(dir, 'trunc.idx'), good.subarray(0, good.length - 3));
    await fsp.writeFile(path.join(dir, 'junk.idx'), new Uint8Array([1, 2, 3, 4, 5]));
    await fsp.writeFile(path.join(dir, 'badgz.idx'), gzipSync(good).subarray(0, 12));
    await fsp.writeFile(path.join(dir, 'l2.idx'), idx([2], [0, 1]));
    const l = path.join(dir, 'l2.idx');
    await expect(loadDataset(`idx:${path.join(dir, 'trunc.idx')},${l}`)).rejects.toThrow(/holds 5; the file is truncated or corrupt/);
    await expect(loadDataset(`idx:${path.join(dir, 'junk.idx')},${l}`)).rejects.toThrow(/bad magic number/);
    await expect(loadDataset(`idx:${path.join(dir, 'badgz.idx')},${l}`)).rejects.toThrow(/does not decompress/);
    await expect(loadDataset(`idx:${path.join(dir, 'missing.idx')},${l}`)).rejects.toBeInstanceOf(DataError);
  });
});

describe('npy files', () => {
  it('round-trips float32 and int32 arrays through the NumPy format', () => {
    const x = Float32Array.from([0, 0.25, 0.5, 1]);
    const back = parseNpy(encodeNpy(x, [1, 2, 2]), 'x.npy');
    expect(back.dtype).toBe('<f4');
    expect(back.shape).toEqual([1, 2, 2]);
    expect(Array.from(back.data)).toEqual([0, 0.25, 0.5, 1]);
    const bytes = encodeNpy(Int32Array.from([3, 1]), [2]);
    expect(new TextDecoder().decode(bytes.subarray(10, 90))).toContain("'shape': (2,)");
    expect((10 + new DataView(bytes.buffer).getUint16(8, true)) % 64).toBe(0);
  });

  it('loads npy image/label pairs (uint8 images scaled to [0,1]) and rejects a length mismatch', async () => {
    await fsp.writeFile(path.join(dir, 'x.npy'), encodeNpy(Uint8Array.from([0, 255, 255, 0]), [2, 1, 2]));
    await fsp.writeFile(path.join(dir, 'y.npy'), encodeNpy(Int32Array.from([0, 1]), [2]));
    await fsp.writeFile(path.join(dir, 'y3.npy'), encodeNpy(Int32Array.from([0, 1, 1]), [3]));
    const ds = await loadDataset(`npy:${path.join(dir, 'x.npy')},${path.join(dir, 'y.npy')}`);
    expect(Array.from(ds.images)).toEqual([0, 1, 1, 0]);
    expect(ds.shape).toEqual([1, 2, 1]);
    await expect(loadDataset(`npy:${path.join(dir, 'x.npy')},${path.join(dir, 'y3.npy')}`)).rejects.toThrow(/expected shape \(2,\)/);
  });
});

describe('npy files as float32', () => {
  it('decodes every dtype to the float32 of parseNpy, uses a float32 file in place, and scales', () => {
    const hand = (descr: string, bytes: number[], n: number) => {
      const h = npyHeader('<f4', [n]);
      const text = new TextDecoder('latin1').decode(h.subarray(10)).replace("'<f4'", `'${descr}'`);
      const out = new Uint8Array(10 + text.length + bytes.length);
      out.set(h.subarray(0, 10));
      new DataView(out.buffer).setUint16(8, text.length, true);
      out.set(new TextEncoder().encode(text), 10);
      out.set(bytes, 10 + text.length);
      return out;
    };
    const f64 = new Uint8Array(Float64Array.from([0.1, -2.5, 1e-8]).buffer);
    const i16 = new Uint8Array(Int16Array.from([-300, 7, 32767]).buffer);
    const i64 = new Uint8Array(BigInt64Array.from([5n, -9n, 123456789n]).buffer);
    for (const [descr, bytes] of [['<f8', f64], ['<i2', i16], ['<i8', i64], ['|i1', [250, 1, 127]], ['|u1', [0, 128, 255]]] as const) {
      const buf = hand(descr, [...bytes], 3);
      const wide = parseNpy(buf, 'x.npy');
      const narrow = parseNpyFloat32(buf, 'x.npy');
      expect(narrow.shape).toEqual([3]);
      expect(Array.from(narrow.data), descr).toEqual(Array.from(Float32Array.from(wide.data)));
    }
    const x = Float32Array.from([0, 0.25, -3.5, 1e30]);
    const buf = encodeNpy(x, [2, 2]);
    const inPlace = parseNpyFloat32(buf, 'x.npy');
    expect(inPlace.data.buffer).toBe(buf.buffer);
    expect(Array.from(inPlace.data)).toEqual(Array.from(x));
    // Misaligned bytes are copied, not misread.
    const shifted = new Uint8Array(buf.length + 1);
    shifted.set(buf, 1);
    const copy = parseNpyFloat32(shifted.subarray(1), 'x.npy');
    expect(Array.from(copy.data)).toEqual(Array.from(x));
    expect(Array.from(parseNpyFloat32(hand('|u1', [0, 51, 255], 3), 'x.npy', 1 / 255).data)).toEqual([0, 51 / 255, 1].map(Math.fround));
    expect(() => parseNpyFloat32(buf.subarray(0, buf.length - 2), 'x.npy')).toThrow(/truncated or corrupt/);
  });
});

describe('image folders', () => {
  it('reads dir/<class>/*.png with class names from folder names, and rejects a non-image file', async () => {
    const root = path.join(dir, 'folder');
    for (const [cls, value] of [['cat', 0], ['dog', 255]] as const) {
      await fsp.mkdir(path.join(root, cls), { recursive: true });
      for (let i = 0; i < 2; i++) {
        await sharp(Buffer.alloc(4 * 4 * 3, value), { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(path.join(root, cls, `${i}.png`));
      }
    }
    const ds = await loadDataset(root, { channels: 1 });
    expect(ds.classNames).toEqual(['cat', 'dog']);
    expect(Array.from(ds.labels)).toEqual([0, 0, 1, 1]);
    expect(ds.shape).toEqual([4, 4, 1]);
    expect(ds.images[16 * 2]).toBeCloseTo(1, 5);
    const resized = await loadDataset(`folder:${root}`, { resize: [2, 3] });
    // The PNGs are RGB files holding grey pixels: read as one channel unless asked.
    expect(resized.shape).toEqual([2, 3, 1]);
    expect((await loadDataset(`folder:${root}`, { resize: [2, 3], channels: 3 })).shape).toEqual([2, 3, 3]);
    const colour = Buffer.alloc(4 * 4 * 3);
    for (let i = 0; i < colour.length; i += 3) colour[i] = 200;
    await sharp(colour, { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(path.join(root, 'cat', 'red.png'));
    expect((await loadDataset(root)).shape).toEqual([4, 4, 3]);
    await fsp.rm(path.join(root, 'cat', 'red.png'));
    await fsp.writeFile(path.join(root, 'dog', 'notes.txt'), 'hello');
    await expect(loadDataset(root)).rejects.toThrow(/notes.txt is not an image/);
    await fsp.writeFile(path.join(root, 'dog', 'fake.png'), 'not a png');
    await fsp.rm(path.join(root, 'dog', 'notes.txt'));
    await expect(loadDataset(root)).rejects.toThrow(/fake.png could not be decoded/);
  });
});

describe('shuffle, split and batches', () => {
  it('are seeded, keep every example once and stream tensors batch by batch', () => {
    const ds = loadMnist('test');
    const a = shuffle(ds, 3);
    const b = shuffle(ds, 3);
    expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
    expect(Array.from(shuffle(ds, 4).ids)).not.toEqual(Array.from(a.ids));
    const [rest, held] = split(ds, 0.25, 1);
    expect(size(rest) + size(held)).toBe(size(ds));
    expect(new Set([...rest.ids, ...held.ids]).size).toBe(size(ds));
    const before = tf.memory().numTensors;
    let seen = 0;
    for (const batch of batches(ds, 500, { seed: 2 })) {
      expect(batch.x.shape.slice(1)).toEqual([28, 28, 1]);
      seen += batch.x.shape[0];
      tf.dispose([batch.x, batch.y]);
    }
    expect(seen).toBe(size(ds));
    expect(tf.memory().numTensors).toBe(before);
  });
});
