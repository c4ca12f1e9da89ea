import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { batchNormTrain, expandConvWeights, FUSED_MAX_POOL, runFused } from '../../src/backend/fused.js';
import { newExpandSlot, releaseExpandSlot } from '../../src/backend/kernels/expand_conv.js';
import { setWasmKernelMode } from '../../src/backend/index.js';
import { Rng } from '../../src/util/random.js';
import { onBackend, relError, uniform, useBackend } from '../helpers.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** Input and filter gradients of sum(conv2d(x, w) * r) on a backend. */
function convGrads(xShape: [number, number, number, number], wShape: [number, number, number, number], stride: number, pad: Pad, seed: number, depthwise = false) {
  return () => {
    const x = tf.tensor4d(uniform(xShape.reduce((a, b) => a * b), seed), xShape);
    const w = tf.tensor4d(uniform(wShape.reduce((a, b) => a * b), seed + 1), wShape);
    const f = (xx: tf.Tensor4D, ww: tf.Tensor4D) => {
      const y = depthwise ? tf.depthwiseConv2d(xx, ww, stride, pad) : tf.conv2d(xx, ww, stride, pad);
      const r = tf.tensor(uniform(y.size, seed + 2), y.shape);
      return tf.sum(tf.mul(y, r));
    };
    const [dx, dw] = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, w]);
    return [dx!, dw!];
  };
}

describe('wasm conv2d gradients match the cpu backend', () => {
  const cases: Array<{ k: number; s: number; pad: Pad; cin: number; size: number }> = [];
  for (const k of [1, 3, 5]) for (const s of [1, 2]) for (const pad of ['same', 'valid'] as const) for (const cin of [1, 3, 6, 16]) cases.push({ k, s, pad, cin, size: k === 5 ? 9 : 8 });
  // Odd sizes exercise the rows a strided valid conv never reads.
  // cin 6 and 16 take the wide paths: a strided dx is a matmul and a SIMD col2im four channels at
  // a time with a scalar tail (6 = 4 + 2); a stride-1 dx is an XNNPACK conv.
  cases.push({ k: 3, s: 2, pad: 'valid', cin: 3, size: 9 }, { k: 3, s: 2, pad: 'same', cin: 1, size: 7 }, { k: 3, s: 2, pad: 'same', cin: 6, size: 7 });

  // Explicit padding wider than the kernel: the stride-1 dx crops dy on those sides.
  cases.push({ k: 3, s: 1, pad: [[0, 0], [3, 1], [0, 4], [0, 0]], cin: 6, size: 8 });

  for (const c of cases) {
    it(`conv2d k=${c.k} stride=${c.s} ${typeof c.pad === 'string' ? c.pad : `pad ${JSON.stringify(c.pad)}`} cin=${c.cin} size=${c.size}: dx and dW within 1e-4`, async () => {
      const fn = convGrads([2, c.size, c.size, c.cin], [c.k, c.k, c.cin, 4], c.s, c.pad, 10 * c.k + c.s);
      const cpu = await onBackend('cpu', fn);
      const wasm = await onBackend('wasm', fn);
      expect(relError(wasm[0]!, cpu[0]!)).toBeLessThanOrEqual(1e-4);
      expect(relError(wasm[1]!, cpu[1]!)).toBeLessThanOrEqual(1e-4);
    });
  }

  for (const s of [1, 2]) for (const pad of ['same', 'valid'] as const) {
    it(`depthwise conv2d k=3 stride=${s} ${pad} multiplier 2: dx and dW within 1e-4`, async () => {
      const fn = convGrads([2, 8, 8, 3], [3, 3, 3, 2], s, pad, 7 + s, true);
      const cpu = await onBackend('cpu', fn);
      const wasm = await onBackend('wasm', fn);
      expect(relError(wasm[0]!, cpu[0]!)).toBeLessThanOrEqual(1e-4);
      expect(relError(wasm[1]!, cpu[1]!)).toBeLessThanOrEqual(1e-4);
    });
  }

  // Multiplier 1 (MobileNet, Xception): the input gradient runs as an XNNPACK depthwise conv at
  // stride 1 and as a SIMD scatter at stride 2 (four channels at a time: 8 channels; with a tail:
  // 6; the tail only: 3), the filter gradient as SIMD over channels or a loop (6 and 3 channels).
  for (const k of [3, 5]) for (const s of [1, 2]) for (const pad of ['same', 'valid'] as const) for (const [c, size] of [[8, 9], [6, 8], [3, 7]] as const) {
    it(`depthwise conv2d k=${k} stride=${s} ${pad} multiplier 1, ${c} channels, size ${size}: dx and dW within 1e-4`, async () => {
      const fn = convGrads([2, size, size, c], [k, k, c, 1], s, pad, 3 * k + s + c, true);
      const cpu = await onBackend('cpu', fn);
      const wasm = await onBackend('wasm', fn);
      expect(relError(wasm[0]!, cpu[0]!)).toBeLessThanOrEqual(1e-4);
      expect(relError(wasm[1]!, cpu[1]!)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('an input gradient through a linear conv layer (fused path) works on wasm', async () => {
    await useBackend('wasm');
    const layer = tf.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'linear', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) });
    const x = tf.ones([1, 5, 5, 1]) as tf.Tensor4D;
    const g = tf.grad((xx: tf.Tensor) => tf.sum(layer.apply(xx) as tf.Tensor))(x);
    expect(g.shape).toEqual([1, 5, 5, 1]);
    expect(Number.isFinite((await g.data())[12]!)).toBe(true);
    tf.dispose([x, g]);
    layer.dispose();
  });
});

describe('wasm max-pool gradient', () => {
  it('a window of negative values gets its gradient (the shipped kernel drops it)', async () => {
    await useBackend('wasm');
    const x = tf.tensor4d([-3, -1, -2, -4], [1, 2, 2, 1]);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.maxPool(xx as tf.Tensor4D, 2, 2, 'valid')))(x);
    expect(Array.from(await g.data())).toEqual([0, 1, 0, 0]);
    tf.dispose([x, g]);
  });

  it('ties send the gradient to the first maximum, as the cpu backend does', async () => {
    const fn = () => {
      const x = tf.tensor4d([0, 5, 5, 0, 2, 2, 2, 2, 0, 0, 0, 0, -1, -1, -1, -1], [1, 4, 4, 1]);
      return [tf.grad((xx: tf.Tensor) => tf.sum(tf.maxPool(xx as tf.Tensor4D, 2, 2, 'valid')))(x)];
    };
    const cpu = await onBackend('cpu', fn);
    const wasm = await onBackend('wasm', fn);
    expect(Array.from(wasm[0]!)).toEqual(Array.from(cpu[0]!));
    expect(cpu[0]![1]).toBe(1); // the first 5, not the second
  });

  it('the SIMD 2x2 path (channels a multiple of 4, odd sizes) keeps the cpu semantics: ties, negative windows, NaN, uncovered rows', async () => {
    const fn = () => {
      // 8 channels: values from a few levels so that ties are common, negatives, a NaN.
      const v = uniform(2 * 9 * 7 * 8, 41).map((u) => Math.round(u * 2) / 2);
      v[5] = NaN;
      const x = tf.tensor4d(v, [2, 9, 7, 8]);
      const r = (y: tf.Tensor) => tf.tensor(uniform(y.size, 6), y.shape);
      return [tf.grad((xx: tf.Tensor) => { const y = tf.maxPool(xx as tf.Tensor4D, 2, 2, 'valid'); return tf.sum(tf.mul(y, r(y))); })(x)];
    };
    const cpu = await onBackend('cpu', fn);
    const wasm = await onBackend('wasm', fn);
    expect(Array.from(wasm[0]!)).toEqual(Array.from(cpu[0]!));
  });

  // Overlapping and padded windows with channels a multiple of 4 take the SIMD kernel for any
  // window: the gradients of overlapping windows add up at shared maxima in the cpu's order.
  for (const [k, s, pad, c] of [[3, 2, 'same', 8], [3, 1, 'same', 12], [3, 2, 'valid', 4], [2, 1, 'valid', 8], [3, 3, 'valid', 8], [5, 2, 'same', 4], [2, 2, 'same', 8]] as const) {
    it(`the SIMD max-pool gradient k=${k} stride=${s} ${pad}, ${c} channels equals the cpu's (ties, negatives, NaN), and with a ReLU folded in`, async () => {
      const shape: [number, number, number, number] = [2, 9, 8, c];
      const v = uniform(shape.reduce((a, b) => a * b), 7 * k + s + c).map((u) => Math.round(u * 2) / 2);
      v[5] = NaN;
      // The ReLU variant without the NaN (relu(NaN)'s gradient is NaN on the cpu, 0 when folded).
      const noNaN = v.map((u) => (Number.isNaN(u) ? 0.25 : u));
      const r = (y: tf.Tensor) => tf.tensor(uniform(y.size, 6), y.shape);
      const plain = () => {
        const x = tf.tensor4d(v, shape);
        const x1 = tf.tensor4d(noNaN, shape);
        return [
          tf.grad((xx: tf.Tensor) => { const y = tf.maxPool(xx as tf.Tensor4D, k, s, pad); return tf.sum(tf.mul(y, r(y))); })(x),
          tf.grad((xx: tf.Tensor) => { const y = tf.maxPool(tf.relu(xx) as tf.Tensor4D, k, s, pad); return tf.sum(tf.mul(y, r(y))); })(x1),
        ];
      };
      const cpu = await onBackend('cpu', plain);
      const wasm = await onBackend('wasm', () => {
        const x = tf.tensor4d(noNaN, shape);
        const attrs = { filterSize: [k, k], strides: [s, s], pad, reluInput: true };
        return [plain()[0]!, tf.grad((xx: tf.Tensor) => { const y = runFused(FUSED_MAX_POOL, { x: tf.relu(xx) }, attrs); return tf.sum(tf.mul(y, r(y))); })(x)];
      });
      // The same elements get a gradient (ties and NaN resolved as the cpu does), of the same
      // value but for the rounding of sums at shared maxima (the cpu adds in another order).
      const where = (g: Float32Array) => Array.from(g, (u) => u !== 0);
      for (const i of [0, 1]) {
        expect(where(wasm[i]!)).toEqual(where(cpu[i]!));
        expect(relError(wasm[i]!, cpu[i]!)).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  for (const [k, s, pad] of [[2, 2, 'valid'], [3, 2, 'same'], [3, 1, 'same'], [2, 1, 'valid']] as const) {
    it(`max and avg pool k=${k} stride=${s} ${pad}: gradients within 1e-4 of cpu`, async () => {
      const fn = () => {
        const x = tf.tensor4d(uniform(2 * 7 * 7 * 3, 99 + k), [2, 7, 7, 3]);
        const r = (y: tf.Tensor) => tf.tensor(uniform(y.size, 5), y.shape);
        const gm = tf.grad((xx: tf.Tensor) => { const y = tf.maxPool(xx as tf.Tensor4D, k, s, pad); return tf.sum(tf.mul(y, r(y))); })(x);
        const ga = tf.grad((xx: tf.Tensor) => { const y = tf.avgPool(xx as tf.Tensor4D, k, s, pad); return tf.sum(tf.mul(y, r(y))); })(x);
        return [gm, ga];
      };
      const cpu = await onBackend('cpu', fn);
      const wasm = await onBackend('wasm', fn);
      expect(relError(wasm[0]!, cpu[0]!)).toBeLessThanOrEqual(1e-4);
      expect(relError(wasm[1]!, cpu[1]!)).toBeLessThanOrEqual(1e-4);
    });
  }
});

describe('resize gradients (UpSampling2D, Resizing) on wasm and cpu', () => {
  // Stock tfjs-wasm's nearest-neighbour gradient is wrong, and so are the cpu's (the nearest one
  // fails the adjoint identity and loops forever on a one-pixel axis with alignCorners; the
  // bilinear one swaps height and width); advkit registers its own on both. Resizing is linear,
  // so its gradient is its adjoint: <resize(x), r> = <x, grad(r)> for all x and r.
  const cases: Array<[number, number, number, number, boolean, boolean]> = [];
  for (const [h, w, oh, ow] of [[4, 4, 8, 8], [5, 7, 11, 9], [6, 6, 3, 4], [4, 5, 4, 5], [1, 3, 2, 6], [3, 2, 1, 1]] as const) {
    for (const [ac, hp] of [[false, false], [true, false], [false, true]] as const) cases.push([h, w, oh, ow, ac, hp]);
  }
  for (const [h, w, oh, ow, ac, hp] of cases) {
    it(`${h}x${w} -> ${oh}x${ow}, alignCorners ${ac}, halfPixelCenters ${hp}: nearest and bilinear gradients are the forward's adjoints on both backends`, async () => {
      const x = uniform(2 * h * w * 3, h * 10 + w);
      const r = uniform(2 * oh * ow * 3, oh * 10 + ow);
      const fn = () => {
        const xt = tf.tensor4d(x, [2, h, w, 3]);
        const rt = tf.tensor4d(r, [2, oh, ow, 3]);
        const near = (t: tf.Tensor) => tf.image.resizeNearestNeighbor(t as tf.Tensor4D, [oh, ow], ac, hp);
        const bil = (t: tf.Tensor) => tf.image.resizeBilinear(t as tf.Tensor4D, [oh, ow], ac, hp);
        const grad = (f: (t: tf.Tensor) => tf.Tensor) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), rt)) as tf.Scalar)(xt);
        return [near(xt), bil(xt), grad(near), grad(bil)];
      };
      const wasm = await onBackend('wasm', fn);
      const cpu = await onBackend('cpu', fn);
      const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
      const rv = Float32Array.from(r);
      const xv = Float32Array.from(x);
      for (const out of [wasm, cpu]) {
        for (const [y, g] of [[0, 2], [1, 3]] as const) {
          const lhs = dot(out[y]!, rv);
          expect(Math.abs(lhs - dot(xv, out[g]!)), `adjoint of output ${y}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(lhs)));
        }
      }
      wasm.forEach((v, i) => expect(relError(v, cpu[i]!), `output ${i} on wasm and cpu`).toBeLessThanOrEqual(1e-6));
    });
  }
});

describe('wasm forward kernels advkit replaces for speed', () => {
  it('BatchMatMul with transposed operands, Sum over leading axes, Cast and Identity match the cpu backend', async () => {
    const fn = () => {
      const a = tf.tensor3d(uniform(2 * 5 * 7, 1), [2, 5, 7]);
      const b = tf.tensor3d(uniform(2 * 6 * 7, 2), [2, 6, 7]);
      const c = tf.tensor3d(uniform(2 * 5 * 6, 3), [2, 5, 6]);
      const x = tf.tensor4d(uniform(3 * 4 * 5 * 6, 4), [3, 4, 5, 6]);
      // A small a against a large b (a batch of 1 against a dense kernel): the (b·aᵀ)ᵀ path.
      const small = tf.tensor3d(uniform(3 * 2 * 9, 5), [3, 2, 9]);
      const large = tf.tensor3d(uniform(3 * 40 * 9, 6), [3, 40, 9]);
      return [
        tf.matMul(a, b, false, true), tf.matMul(c, a, true, false), tf.matMul(b, c, true, true), tf.matMul(small, large, false, true),
        tf.sum(x, [0, 1, 2]), tf.sum(x, [1, 0]), tf.sum(x, 0, true), tf.sum(x, [1, 3]), tf.sum(x),
        tf.cast(x, 'float32'), tf.clone(x),
      ];
    };
    const cpu = await onBackend('cpu', fn);
    const wasm = await onBackend('wasm', fn);
    cpu.forEach((c, i) => expect(relError(wasm[i]!, c), `output ${i}`).toBeLessThanOrEqual(1e-5));
  });

  it('Slice of random boxes (rank 1 to 5; float32, int32, bool) equals the cpu backend element for element', async () => {
    const rng = new Rng(3);
    const int = (n: number) => Math.floor(rng.next() * n);
    const cases: Array<{ shape: number[]; begin: number[]; size: number[]; dtype: 'float32' | 'int32' | 'bool' }> = [];
    for (let k = 0; k < 60; k++) {
      const shape = Array.from({ length: 1 + int(5) }, () => 1 + int(6));
      const begin = shape.map((d) => int(d));
      // -1 (to the end), a whole axis or a part of it: the trailing whole axes merge into one run.
      const size = shape.map((d, i) => [-1, d - begin[i]!, 1 + int(d - begin[i]!)][int(3)]!);
      if (rng.next() < 0.3) begin.fill(0, 1), size.fill(-1, 1);
      cases.push({ shape, begin, size, dtype: (['float32', 'int32', 'bool'] as const)[k % 3]! });
    }
    // The zero padding's gradient of a ResNet stem, and an empty slice.
    cases.push({ shape: [4, 18, 18, 8], begin: [0, 1, 1, 0], size: [4, 16, 16, 8], dtype: 'float32' }, { shape: [3, 4], begin: [1, 2], size: [0, 2], dtype: 'float32' });
    const fn = () => cases.map((c) => {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(Array.from({ length: n }, (_, i) => (c.dtype === 'bool' ? Number(i % 3 === 0) : c.dtype === 'int32' ? i - 7 : i * 0.25)), c.shape, c.dtype);
      return tf.cast(tf.slice(x, c.begin, c.size), 'float32');
    });
    const cpu = await onBackend('cpu', fn);
    const wasm = await onBackend('wasm', fn);
    cases.forEach((c, i) => expect(Array.from(wasm[i]!), JSON.stringify(c)).toEqual(Array.from(cpu[i]!)));
  });

  it('Reverse over random axes (rank 1 to 5; float32, int32, bool; size-1 and empty tensors) equals the cpu backend element for element', async () => {
    const rng = new Rng(4);
    const int = (n: number) => Math.floor(rng.next() * n);
    const cases: Array<{ shape: number[]; dims: number[]; dtype: 'float32' | 'int32' | 'bool' }> = [];
    for (let k = 0; k < 60; k++) {
      const shape = Array.from({ length: 1 + int(5) }, () => 1 + int(5));
      // A subset of the axes, some given negative; every subset, the empty one included, occurs.
      const dims = shape.map((_, i) => i).filter(() => rng.next() < 0.5).map((d) => (rng.next() < 0.3 ? d - shape.length : d));
      cases.push({ shape, dims, dtype: (['float32', 'int32', 'bool'] as const)[k % 3]! });
    }
    // A conv filter's flip as the input gradient asks for it, and an empty tensor.
    cases.push({ shape: [3, 3, 4, 5], dims: [0, 1], dtype: 'float32' }, { shape: [2, 0, 3], dims: [0], dtype: 'float32' });
    const fn = () => cases.map((c) => {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(Array.from({ length: n }, (_, i) => (c.dtype === 'bool' ? Number(i % 3 === 0) : c.dtype === 'int32' ? i - 7 : i * 0.25)), c.shape, c.dtype);
      return tf.cast(tf.reverse(x, c.dims), 'float32');
    });
    const cpu = await onBackend('cpu', fn);
    const wasm = await onBackend('wasm', fn);
    cases.forEach((c, i) => expect(Array.from(wasm[i]!), JSON.stringify(c)).toEqual(Array.from(cpu[i]!)));
  });

  it('Maximum and Minimum equal the stock wasm kernels bit for bit (NaN, -0, scalar either side, odd lengths, a broadcast left to stock)', async () => {
    const special = [NaN, -0, 0, 1, -1, Infinity, -Infinity, 0.5];
    const vals = (n: number, seed: number) => Float32Array.from(uniform(n, seed), (v, i) => (i % 5 === 0 ? special[(i + seed) % special.length]! : v));
    const fn = () => {
      const out: tf.Tensor[] = [];
      for (const n of [1, 3, 4, 7, 37, 4096 + 3]) {
        const a = tf.tensor1d(vals(n, n));
        const b = tf.tensor1d(vals(n, n + 1));
        for (const s of [NaN, -0, 0.25]) out.push(tf.maximum(a, s), tf.minimum(a, s), tf.maximum(tf.scalar(s), a), tf.minimum(tf.scalar(s), a));
        out.push(tf.maximum(a, b), tf.minimum(a, b), tf.maximum(b, a), tf.minimum(b, a));
      }
      const m = tf.tensor2d(vals(12, 9), [3, 4]);
      out.push(tf.maximum(m, tf.tensor2d(vals(3, 2), [3, 1])), tf.minimum(tf.tensor1d(vals(4, 5)), m), tf.maximum(m, tf.tensor2d([[2]])));
      return out;
    };
    await useBackend('wasm');
    setWasmKernelMode('baseline');
    let stockOut: Float32Array[];
    try {
      stockOut = await onBackend('wasm', fn);
    } finally {
      setWasmKernelMode('advkit');
    }
    const ours = await onBackend('wasm', fn);
    const bits = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
    stockOut.forEach((s, i) => expect(bits(ours[i]!), `output ${i}`).toEqual(bits(s)));
  });

  it('shared data from Identity and Cast survives disposing the original', async () => {
    await useBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    const z = tf.cast(x, 'float32');
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1, 2, 3]);
    expect(Array.from(await z.data())).toEqual([1, 2, 3]);
    tf.dispose([y, z]);
  });
});

describe('a conv as one dense product over the positions (AdvkitExpandConv)', () => {
  // 3x3 stride 1 'same' on 2x2 (pad 1 before), and 5x3 stride 2 on 3x2 with explicit padding.
  const cases = [
    { filter: [3, 3, 2, 3], g: { inH: 2, inW: 2, outH: 2, outW: 2, strides: [1, 1] as [number, number], top: 1, left: 1 } },
    { filter: [5, 3, 2, 4], g: { inH: 3, inW: 2, outH: 2, outW: 1, strides: [2, 2] as [number, number], top: 2, left: 1 } },
  ];

  it('x · W_big + tiled bias equals the conv (cpu), and W_big\'s gradient is its adjoint: <W_big(W), R> = <W, grad(R)>', async () => {
    for (const [k, { filter, g }] of cases.entries()) {
      const [kh, kw, ci, co] = filter as [number, number, number, number];
      const w = uniform(kh * kw * ci * co, 10 + k);
      const b = uniform(co, 20 + k);
      const x = uniform(3 * g.inH * g.inW * ci, 30 + k);
      const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [g.top, (g.outH - 1) * g.strides[0] + kh - g.inH - g.top], [g.left, (g.outW - 1) * g.strides[1] + kw - g.inW - g.left], [0, 0]];
      const [expected] = await onBackend('cpu', () => [tf.add(tf.conv2d(tf.tensor4d(x, [3, g.inH, g.inW, ci]), tf.tensor4d(w, filter as [number, number, number, number]), g.strides, pad), tf.tensor1d(b))]);
      await useBackend('wasm');
      const slot = newExpandSlot();
      const start = tf.memory().numTensors;
      const rows = g.inH * g.inW * ci;
      const cols = g.outH * g.outW * co;
      const r = uniform(rows * cols, 40 + k);
      const { got, lhs, rhs } = tf.tidy(() => {
        const wt = tf.tensor4d(w, filter as [number, number, number, number]);
        const [big, tiled] = expandConvWeights(wt, tf.tensor1d(b), { ...g, slot });
        const y = tf.add(tf.matMul(tf.tensor2d(x, [3, rows]), big!), tiled!);
        const rt = tf.tensor2d(r, [rows, cols]);
        const gw = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(expandConvWeights(t, undefined, { ...g, slot: newExpandSlot() })[0]!, rt)))(wt);
        return { got: y.dataSync(), lhs: tf.sum(tf.mul(big!, rt)).dataSync()[0]!, rhs: tf.sum(tf.mul(wt, gw)).dataSync()[0]! };
      });
      expect(relError(got, expected!)).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(lhs)));
      releaseExpandSlot(slot);
      expect(tf.memory().numTensors).toBe(start);
    }
  });

  it('the same filter and bias give back the same buffers (XNNPACK\'s packed weights stay warm); a changed filter rebuilds them; releasing the slot frees them', async () => {
    await useBackend('wasm');
    const { filter, g } = cases[0]!;
    const slot = newExpandSlot();
    const bytes = tf.memory().numBytes;
    const w = tf.tensor4d(uniform(54, 1), filter as [number, number, number, number]);
    const b = tf.tensor1d(uniform(3, 2));
    const [big1, tiled1] = expandConvWeights(w, b, { ...g, slot });
    const [big2, tiled2] = expandConvWeights(w, b, { ...g, slot });
    expect(big2!.dataId).toBe(big1!.dataId);
    expect(tiled2!.dataId).toBe(tiled1!.dataId);
    const w2 = tf.mul(w, 2);
    const [big3, tiled3] = expandConvWeights(w2, b, { ...g, slot });
    expect(big3!.dataId).not.toBe(big1!.dataId);
    expect(Array.from(await big3!.data())).toEqual(Array.from(await big1!.data()).map((v) => v * 2));
    tf.dispose([w, b, w2, big1!, tiled1!, big2!, tiled2!, big3!, tiled3!]);
    releaseExpandSlot(slot);
    expect(tf.memory().numBytes).toBe(bytes);
  });
});

describe('wasm training batch norm (AdvkitBatchNormTrain)', () => {
  /** y = (x − mean)·gamma/√(var + eps) + beta over the last axis, with tf.moments (cpu autodiff is the reference). */
  const reference = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number) => {
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    return [tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta), mean, variance];
  };
  // Channel counts: 16 and 4 take the SIMD passes, 3 and 6 the loops; a rank-2 input is a dense
  // layer's batch norm; offset 3 puts the mean well away from 0.
  const cases: Array<{ shape: number[]; offset: number }> = [
    { shape: [4, 5, 5, 16], offset: 0 }, { shape: [3, 7, 7, 4], offset: 3 }, { shape: [5, 4, 3, 3], offset: 0 }, { shape: [9, 6], offset: -2 }, { shape: [2, 3, 3, 8], offset: 3 },
  ];
  for (const { shape, offset } of cases) {
    it(`shape ${JSON.stringify(shape)}, mean offset ${offset}: y, batch mean and variance, dx, dgamma and dbeta within 1e-4 of cpu autodiff; no leak; same bytes twice`, async () => {
      const c = shape[shape.length - 1]!;
      const size = shape.reduce((a, b) => a * b, 1);
      const eps = 1e-3;
      const fn = (fast: boolean) => () => {
        const x = tf.add(tf.tensor(uniform(size, 7, -1, 1), shape), offset);
        const gamma = tf.tensor1d(uniform(c, 8, 0.5, 1.5));
        const beta = tf.tensor1d(uniform(c, 9, -0.5, 0.5));
        const r = tf.tensor(uniform(size, 10), shape);
        const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => (fast ? batchNormTrain(xx, g, b, eps) : reference(xx, g, b, eps));
        const [y, mean, variance] = f(x, gamma, beta);
        const grads = tf.grads((xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(xx, g, b)[0]!, r)))([x, gamma, beta]);
        return [y!, mean!, variance!, ...grads];
      };
      const cpu = await onBackend('cpu', fn(false));
      await useBackend('wasm');
      const before = tf.memory().numTensors;
      const wasm = await onBackend('wasm', fn(true));
      const again = await onBackend('wasm', fn(true));
      expect(tf.memory().numTensors).toBe(before);
      ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'].forEach((name, i) => {
        expect(relError(wasm[i]!, cpu[i]!), name).toBeLessThanOrEqual(1e-4);
        expect(Array.from(again[i]!), `${name}: same bytes`).toEqual(Array.from(wasm[i]!));
      });
      expect(cpu[3]!.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    });
  }

  it('the gradient runs two kernel passes (the column sums, then dx) and no element-wise tfjs ops', async () => {
    await useBackend('wasm');
    const x = tf.tensor4d(uniform(2 * 4 * 4 * 8, 3), [2, 4, 4, 8]);
    const gamma = tf.ones([8]);
    const beta = tf.zeros([8]);
    const profile = await tf.profile(() => tf.grad((xx: tf.Tensor) => tf.sum(batchNormTrain(xx, gamma, beta, 1e-3)[0]))(x));
    const names = profile.kernels.map((k) => k.name);
    expect(names.filter((n) => n === 'AdvkitBatchNormTrainGrad')).toHaveLength(2);
    expect(names).toContain('AdvkitBatchNormTrain');
    for (const absent of ['Sub', 'Mul', 'Square', 'Tile', 'Rsqrt']) expect(names, absent).not.toContain(absent);
    tf.dispose([x, gamma, beta, profile.result as tf.Tensor]);
  });
});
