/**
 * A Sequential LayersModel as a chain of advkit's fused ops (backend/fused.ts) on the wasm
 * backend: conv/dense + bias + ReLU in one XNNPACK kernel, and gradients that apply each ReLU's
 * mask in one pass (inside the max-pool gradient when a pool follows). The same weights, the
 * same function: logits equal the model's `predict` on wasm, and gradients (input and weights)
 * equal the cpu backend's (tests/models/compiled.test.ts).
 *
 * Only chains of layers whose semantics are written out here compile (Conv2D, Dense, Max- and
 * AveragePooling2D, Flatten, ReLU activations, inference-mode Dropout); any other model, layer
 * option or backend runs through the model's own `apply`.
 */
import * as tf from '@tensorflow/tfjs';
import { getWasmKernelMode } from '../backend/wasm_kernels.js';
import { FUSED_CONV, FUSED_DENSE, FUSED_MAX_POOL, registerFusedOps, type ConvAttrs, type PoolAttrs } from '../backend/fused.js';

type Step = (h: tf.Tensor) => tf.Tensor;
type Forward = (x: tf.Tensor, training: boolean) => tf.Tensor;

interface LayerWithWeights extends tf.layers.Layer {
  kernel?: { read(): tf.Tensor };
  bias?: { read(): tf.Tensor } | null;
}

const compiledCache = new WeakMap<tf.LayersModel, { plan: Array<{ step: Step; dropout: boolean }> } | null>();

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0]!, a[1] ?? a[0]!];
}

function activationOf(config: tf.serialization.ConfigDict): 'relu' | 'linear' | null {
  const a = config.activation ?? 'linear';
  return a === 'relu' || a === 'linear' ? a : null;
}

/** A pooling layer's step, or null for options outside what compiles. */
function poolStep(config: tf.serialization.ConfigDict, kind: 'max' | 'avg', reluInput: boolean): Step | null {
  const pad = config.padding;
  if (pad !== 'same' && pad !== 'valid') return null;
  if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') return null;
  const filterSize = pair(config.poolSize);
  const strides = pair(config.strides ?? config.poolSize);
  if (kind === 'avg') return (h) => tf.avgPool(h as tf.Tensor4D, filterSize, strides, pad);
  const attrs: PoolAttrs = { filterSize, strides, pad, reluInput };
  return (h) => tf.engine().runKernel(FUSED_MAX_POOL, { x: h }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** The plan for `model`, or null when some layer is outside what compiles. */
function compile(model: tf.LayersModel): Array<{ step: Step; dropout: boolean }> | null {
  if (model.getClassName() !== 'Sequential' || model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const layers = model.layers as LayerWithWeights[];
  const plan: Array<{ step: Step; dropout: boolean }> = [];
  let rank = model.inputs[0]!.shape.length;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i]!;
    const config = layer.getConfig();
    const kind = layer.getClassName();
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') return null;
    if (kind === 'InputLayer') continue;
    if (kind === 'Conv2D') {
      const activation = activationOf(config);
      const padding = config.padding;
      if (!activation || rank !== 4 || (padding !== 'same' && padding !== 'valid') || pair(config.dilationRate ?? 1).some((d) => d !== 1)) return null;
      if (!layer.kernel || (config.useBias && !layer.bias)) return null;
      const next = layers[i + 1];
      const pooled = next !== undefined && next.getClassName() === 'MaxPooling2D' && activation === 'relu';
      const attrs: ConvAttrs = { strides: pair(config.strides), pad: padding, activation, maskedUpstream: pooled };
      const kernel = layer.kernel;
      const bias = config.useBias ? layer.bias! : null;
      plan.push({ dropout: false, step: (h) => tf.engine().runKernel(FUSED_CONV, bias ? { x: h, filter: kernel.read(), bias: bias.read() } : { x: h, filter: kernel.read() }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor });
      if (pooled) {
        // The pool's gradient applies this layer's ReLU mask (maskedUpstream above).
        const step = poolStep(next.getConfig(), 'max', true);
        if (!step) return null;
        plan.push({ dropout: false, step });
        i++;
      }
      continue;
    }
    if (kind === 'MaxPooling2D' || kind === 'AveragePooling2D') {
      const step = rank === 4 ? poolStep(config, kind === 'MaxPooling2D' ? 'max' : 'avg', false) : null;
      if (!step) return null;
      plan.push({ dropout: false, step });
      continue;
    }
    if (kind === 'Flatten') {
      plan.push({ dropout: false, step: (h) => tf.reshape(h, [h.shape[0]!, -1]) });
      rank = 2;
      continue;
    }
    if (kind === 'Dense') {
      const activation = activationOf(config);
      if (!activation || rank !== 2 || !layer.kernel || (config.useBias && !layer.bias)) return null;
      const kernel = layer.kernel;
      const bias = config.useBias ? layer.bias! : null;
      const attrs = { activation };
      plan.push({ dropout: false, step: (h) => tf.engine().runKernel(FUSED_DENSE, bias ? { x: h, kernel: kernel.read(), bias: bias.read() } : { x: h, kernel: kernel.read() }, attrs) as tf.Tensor });
      continue;
    }
    if ((kind === 'Activation' && config.activation === 'relu') || (kind === 'ReLU' && config.maxValue == null)) {
      plan.push({ dropout: false, step: (h) => tf.relu(h) });
      continue;
    }
    if (kind === 'Dropout') {
      plan.push({ dropout: true, step: (h) => h });
      continue;
    }
    return null;
  }
  return plan;
}

/**
 * The model's forward function through the fused ops, or null when this model does not
 * compile. The returned function itself falls back to `model.apply` off the wasm backend, in
 * the benchmarks' baseline kernel mode, and in training mode for models with Dropout.
 */
export function compiledForward(model: tf.LayersModel): Forward | null {
  if (!compiledCache.has(model)) {
    const plan = compile(model);
    compiledCache.set(model, plan ? { plan } : null);
  }
  const entry = compiledCache.get(model);
  if (!entry) return null;
  const { plan } = entry;
  const hasDropout = plan.some((p) => p.dropout);
  return (x, training) => {
    if (tf.getBackend() !== 'wasm' || getWasmKernelMode() !== 'advkit' || (training && hasDropout)) {
      return model.apply(x, { training }) as tf.Tensor;
    }
    registerFusedOps();
    let h = x;
    for (const { step } of plan) h = step(h);
    return h;
  };
}

/** `model.apply(x, { training })`, through the fused ops where the model compiles. */
export function forward(model: tf.LayersModel, x: tf.Tensor, training: boolean): tf.Tensor {
  const f = compiledForward(model);
  return f ? f(x, training) : (model.apply(x, { training }) as tf.Tensor);
}
