import * as tf from '@tensorflow/tfjs';
import { free, run, stock, type KernelArgs, type TensorInfo } from './heap.js';

/**
 * BatchMatMul with a transposed operand: stock tfjs-wasm leaves XNNPACK for a slow loop, so the
 * operand is transposed explicitly (a fast copy) and the product runs untransposed.
 */
function batchMatMul({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const stockMatMul = stock('BatchMatMul');
  const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
  if (!transposeA && !transposeB) return stockMatMul({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
  const swapLast = (t: TensorInfo) => {
    const r = t.shape.length;
    const perm = Array.from({ length: r }, (_, i) => i);
    perm[r - 1] = r - 2;
    perm[r - 2] = r - 1;
    return run('Transpose', { x: t }, { perm }, backend);
  };
  const dims = (t: TensorInfo) => t.shape.slice(-2) as [number, number];
  if (transposeB && !transposeA) {
    // a·bᵀ = (b·aᵀ)ᵀ when a is the small operand (a batch against a dense layer's kernel): the
    // direct way copies b into bᵀ and XNNPACK packs that fresh operand again (2·n·k floats); the
    // swapped way transposes and packs a (2·m·k) and transposes the product (m·n).
    const [m, k] = dims(inputs.a!);
    const n = dims(inputs.b!)[0];
    if (2 * m * k + m * n < 2 * n * k) {
      const aT = swapLast(inputs.a!);
      const prod = stockMatMul({ inputs: { a: inputs.b!, b: aT }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as tf.NamedAttrMap }) as TensorInfo;
      free(backend, aT);
      const out = swapLast(prod);
      free(backend, prod);
      return out;
    }
  }
  const a = transposeA ? swapLast(inputs.a!) : inputs.a!;
  const b = transposeB ? swapLast(inputs.b!) : inputs.b!;
  const out = stockMatMul({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as tf.NamedAttrMap }) as TensorInfo;
  if (transposeA) free(backend, a);
  if (transposeB) free(backend, b);
  return out;
}

export const batchMatMulConfig: tf.KernelConfig = { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: batchMatMul as unknown as tf.KernelFunc };
