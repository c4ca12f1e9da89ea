/**
 * The compiler's intermediate form: a model as a topologically ordered list of nodes, each an op
 * on earlier nodes' outputs. Frontends (layers.ts, graph_model.ts) lower a LayersModel or a
 * GraphModel to it; passes.ts rewrites it (batch norm folded into the conv before it, ReLU/ReLU6
 * fused into conv and dense, zero padding merged into the next conv, a final softmax cut, one
 * sigmoid unit made two logits); execute.ts runs it.
 *
 * Weights are `Param`s read at run time (a layer's variable, or a graph's constant), so the
 * compiled model follows weight updates and weight gradients flow to the model's variables.
 */
import type * as tf from '@tensorflow/tfjs';

/** A weight: a LayersModel variable (`read()` returns the variable itself) or a constant. */
export interface Param {
  read(): tf.Tensor;
}

export type Activation = 'linear' | 'relu' | 'relu6';

/** Inference batch norm: (x − mean)·gamma/sqrt(var + eps) + beta over the last axis. */
export interface BatchNormParams {
  gamma?: Param;
  beta?: Param;
  mean: Param;
  variance: Param;
  epsilon: number;
  /**
   * Training mode (LayersModels): moving mean and variance are updated with the batch's
   * statistics as tfjs-layers does, `moving − (moving − batch)·(1 − momentum)`.
   */
  training?: { momentum: number; update(mean: tf.Tensor, variance: tf.Tensor): void };
}

/** 'same', 'valid', or explicit spatial padding [[top, bottom], [left, right]]. */
export type Padding = 'same' | 'valid' | [[number, number], [number, number]];

/** Element-wise activations run as tfjs ops (relu and relu6 run as fused clamps). */
export const ACTIVATIONS = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'elu', 'selu', 'softplus', 'softsign',
  'swish', 'hard_sigmoid', 'hard_swish', 'leaky_relu', 'gelu', 'gelu_new', 'mish', 'exp', 'erf'] as const;
/**
 * The named activations, PReLU (its slopes a weight: the act op's `slopes`) and ThresholdedReLU
 * (x where x > theta, else 0; theta in the act op's `alpha`).
 */
export type ActivationFn = (typeof ACTIVATIONS)[number] | 'prelu' | 'thresholded_relu';

export type Op =
  | { kind: 'input' }
  | { kind: 'conv'; depthwise: boolean; filter: Param; bias?: Param; strides: [number, number]; pad: Padding; dilations: [number, number]; act: Activation; bn?: BatchNormParams;
      /** A max pool after this ReLU conv applies the ReLU's mask inside its gradient. */
      maskedByPool?: boolean }
  | { kind: 'dense'; kernel: Param; bias?: Param; act: Activation; bn?: BatchNormParams }
  | { kind: 'batchnorm'; bn: BatchNormParams }
  | { kind: 'act'; fn: ActivationFn; alpha?: number; slopes?: Param; /** hard_sigmoid's offset (default 0.5; alpha its slope, default 0.2). */ beta?: number }
  | { kind: 'binary'; fn: 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' }
  /** x op c or c op x (constFirst) with a constant c, broadcast. */
  | { kind: 'const-binary'; fn: 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min'; value: Param; constFirst: boolean }
  | { kind: 'affine'; scale: number; offset: number }
  | { kind: 'concat'; axis: number }
  /** Spatial padding by `value` (default 0; a max pool's explicit padding pads by −3.4e38). */
  | { kind: 'pad'; pads: [[number, number], [number, number]]; value?: number }
  | { kind: 'crop'; crop: [[number, number], [number, number]] }
  /** Channel shuffle of the last axis: viewed as [groups, c/groups], transposed (output j·groups + i is input i·(c/groups) + j). */
  | { kind: 'shuffle'; groups: number }
  /** Channels [begin, begin + size) of the last axis (an ONNX channel slice, one group of a group conv). */
  | { kind: 'slice'; begin: number; size: number }
  | { kind: 'pool'; type: 'max' | 'avg'; filterSize: [number, number]; strides: [number, number]; pad: 'same' | 'valid'; reluInput?: boolean }
  | { kind: 'reduce'; type: 'mean' | 'max'; axes: number[]; keepDims: boolean }
  /** Reshape to [batch, ...shape]; shape may hold one -1. `channelsFirst`: of the NCHW order (PyTorch's flatten of a feature map). */
  | { kind: 'reshape'; shape: number[]; channelsFirst?: boolean }
  | { kind: 'squeeze'; axes: number[] }
  | { kind: 'identity' }
  /** Identity in inference; in training mode `train` runs (a Dropout layer's own call). */
  | { kind: 'dropout'; train: (x: tf.Tensor) => tf.Tensor }
  /** Anything else, run by tfjs for this node only. */
  | { kind: 'fallback'; reason: string; run: (inputs: tf.Tensor[], training: boolean) => tf.Tensor };

export interface Node {
  /** The layer or graph node it came from. */
  name: string;
  /** Its layer class or graph op ('Conv2D', '_FusedConv2D', ...). */
  source: string;
  op: Op;
  inputs: number[];
}

export interface Graph {
  nodes: Node[];
  /** Node index of the logits. */
  output: number;
  /** How the model's own output relates to the logits. */
  outputKind: 'logits' | 'softmax-cut' | 'sigmoid-binary';
  /** Sources merged into other nodes by the passes: "BatchNormalization 'bn1' folded into 'conv1'". */
  merged: string[];
  /** What a user should know about how a layer was read ("tfjs ignores this layer's dilation"). */
  notes: string[];
  /** Tensors the frontend made for the graph (a transposed GraphModel weight); freed with it. */
  owned: tf.Tensor[];
}
