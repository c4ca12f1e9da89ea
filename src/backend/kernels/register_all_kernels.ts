/**
 * advkit's kernels for the tfjs `wasm` backend, as tables of `KernelConfig`s (one file per
 * kernel beside this one), the way tfjs-backend-wasm registers its own.
 *
 * As shipped (tfjs 4.22.0) the wasm backend cannot train: Conv2DBackpropFilter and the depthwise
 * backprop kernels are missing, so `model.fit` throws and so does an input gradient through a
 * conv layer (the fused conv path always asks for the filter gradient). Its MaxPoolGrad is wrong
 * (the running maximum starts at the smallest positive float, so a window whose maximum is <= 0
 * loses its gradient; ties pick the last element where the cpu backend picks the first), and its
 * Conv2DBackpropInput is a naive scalar loop. Its ResizeNearestNeighborGrad is wrong too.
 *
 * - ADVKIT_KERNELS (registered by default): the fast set. Conv gradients through the backend's
 *   XNNPACK convolutions, SIMD kernels on the backend's heap (simd_kernels.wat), shared buffers
 *   for Identity and same-dtype Cast, column sums for bias gradients, Slice and Reverse as block copies,
 *   Maximum and Minimum without the generic broadcast loop.
 * - BASELINE_KERNELS: the slow but correct set a backend needs to train at all (stock
 *   Conv2DBackpropInput, BatchMatMul, Identity, Cast and Sum; the loops for pooling and depthwise
 *   gradients); the benchmarks measure the plain loop on it in the same run.
 * Every kernel is tested for parity against the `cpu` backend's gradients; they change speed,
 * never results, but for the resize gradients, which both tables carry: they are tested as the
 * adjoints of the forward kernels, since the stock wasm and cpu ones are wrong in places.
 * - CPU_KERNELS: the same resize and average-pool gradients (avg_pool_grad.ts) for the `cpu` backend (tfjs' own are wrong there too;
 *   the cpu backend is the parity tests' reference). Nothing here touches `tensorflow`.
 */
import * as tf from '@tensorflow/tfjs';
import { avgPoolGradConfig, avgPoolGradCpuConfig } from './avg_pool_grad.js';
import { batchMatMulConfig } from './batch_mat_mul.js';
import { castConfig } from './cast.js';
import { conv2DBackpropFilterBaselineConfig, conv2DBackpropFilterConfig } from './conv2d_backprop_filter.js';
import { conv2DBackpropInputConfig } from './conv2d_backprop_input.js';
import { depthwiseConv2dNativeBackpropFilterBaselineConfig, depthwiseConv2dNativeBackpropFilterConfig } from './depthwise_conv2d_native_backprop_filter.js';
import { depthwiseConv2dNativeBackpropInputBaselineConfig, depthwiseConv2dNativeBackpropInputConfig } from './depthwise_conv2d_native_backprop_input.js';
import { stockKernels, WASM } from './heap.js';
import { identityConfig } from './identity.js';
import { maxPoolGradBaselineConfig, maxPoolGradConfig } from './max_pool_grad.js';
import { maximumConfig, minimumConfig } from './minimum_maximum.js';
import { resizeBilinearGradConfig, resizeBilinearGradCpuConfig, resizeNearestNeighborGradConfig, resizeNearestNeighborGradCpuConfig } from './resize_grad.js';
import { reverseConfig } from './reverse.js';
import { sliceConfig } from './slice.js';
import { sumConfig } from './sum.js';

export const ADVKIT_KERNELS: readonly tf.KernelConfig[] = [
  conv2DBackpropInputConfig, conv2DBackpropFilterConfig, depthwiseConv2dNativeBackpropInputConfig,
  depthwiseConv2dNativeBackpropFilterConfig, maxPoolGradConfig, batchMatMulConfig, identityConfig, castConfig, sumConfig,
  sliceConfig, reverseConfig, maximumConfig, minimumConfig, resizeNearestNeighborGradConfig, resizeBilinearGradConfig, avgPoolGradConfig,
];

/** The baseline set: a name advkit's table has and this one lacks runs the stock kernel (but for wrong ones). */
export const BASELINE_KERNELS: readonly tf.KernelConfig[] = [
  resizeNearestNeighborGradConfig, resizeBilinearGradConfig, avgPoolGradConfig, conv2DBackpropFilterBaselineConfig, depthwiseConv2dNativeBackpropInputBaselineConfig,
  depthwiseConv2dNativeBackpropFilterBaselineConfig, maxPoolGradBaselineConfig,
];

/** Names of the kernels advkit registers for wasm (reported by `advkit info`), from the table. */
export const WASM_KERNELS: readonly string[] = ADVKIT_KERNELS.map((k) => k.kernelName);

/** Which table is registered: 'advkit' (default) or 'baseline'. */
export type WasmKernelMode = 'advkit' | 'baseline';
let active: WasmKernelMode | null = null;

function install(table: readonly tf.KernelConfig[]): void {
  for (const name of WASM_KERNELS) {
    const config = table.find((k) => k.kernelName === name) ?? stockKernels.get(name);
    if (tf.getKernel(name, WASM)) tf.unregisterKernel(name, WASM);
    if (!config) continue;
    // The stock setup (cwrap of the wasm function) stays with every config, so a wrapper can
    // call the stock kernel and the stock kernel runs when the baseline table is in force.
    const setupFunc = stockKernels.get(name)?.setupFunc;
    tf.registerKernel({ ...config, ...(setupFunc ? { setupFunc } : {}) });
  }
}

/**
 * Registers advkit's kernels for the wasm backend (idempotent), keeping the stock ones they
 * replace. Call after the wasm backend package is imported; `initBackend` does it for you.
 */
export function registerWasmKernels(): void {
  if (active) return;
  for (const name of WASM_KERNELS) {
    const stock = tf.getKernel(name, WASM);
    if (stock) stockKernels.set(name, stock);
  }
  install(ADVKIT_KERNELS);
  active = 'advkit';
}

/** Registers the advkit or the baseline table (the benchmarks' baseline loops). */
export function setWasmKernelMode(mode: WasmKernelMode): void {
  registerWasmKernels();
  if (mode === active) return;
  install(mode === 'advkit' ? ADVKIT_KERNELS : BASELINE_KERNELS);
  active = mode;
}

/** The table in force ('advkit' before any registration: nothing else is). */
export function getWasmKernelMode(): WasmKernelMode {
  return active ?? 'advkit';
}

/** advkit's kernels for the `cpu` backend: the resize and average-pool gradients (tfjs' own are wrong). */
export const CPU_KERNELS: readonly tf.KernelConfig[] = [resizeNearestNeighborGradCpuConfig, resizeBilinearGradCpuConfig, avgPoolGradCpuConfig];
let cpuRegistered = false;

/** Registers CPU_KERNELS over tfjs' own (idempotent); `initBackend('cpu')` does it for you. */
export function registerCpuKernels(): void {
  if (cpuRegistered) return;
  for (const k of CPU_KERNELS) {
    if (tf.getKernel(k.kernelName, 'cpu')) tf.unregisterKernel(k.kernelName, 'cpu');
    tf.registerKernel(k);
  }
  cpuRegistered = true;
}
