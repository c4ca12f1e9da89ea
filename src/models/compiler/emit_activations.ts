/**
 * Element-wise activations for the ONNX emitter (emit_onnx.ts): each one's forward as ONNX ops
 * and its vector-Jacobian product g·f'(x), with tfjs' definitions and tfjs' gradients (relu's
 * mask x > 0, relu6's 0 < x <= 6, clip's inclusive bounds, gelu's erf form), so the emitted
 * gradient is the one the tfjs path computes.
 */
import type { ActivationFn } from './ir.js';
import type { OnnxBuilder } from './onnx_builder.js';

const SELU_ALPHA = 1.6732632423543772;
const SELU_GAMMA = 1.0507009873554805;

/** y = f(x) for activation `fn`; `slope` is a PReLU's slope tensor laid out like x. */
export function emitActivation(b: OnnxBuilder, fn: ActivationFn, x: string, alpha: number | undefined, slope?: string, beta?: number): string {
  const c = (v: number) => b.scalar(v);
  switch (fn) {
    case 'linear': return x;
    case 'relu': return b.op('Relu', [x]);
    case 'relu6': return b.op('Clip', [x, c(0), c(6)]);
    case 'sigmoid': return b.op('Sigmoid', [x]);
    case 'tanh': return b.op('Tanh', [x]);
    case 'softmax': return b.op('Softmax', [x], { axis: -1 });
    case 'elu': return b.op('Elu', [x], { alpha: { float: 1 } });
    case 'selu': return b.op('Selu', [x], { alpha: { float: SELU_ALPHA }, gamma: { float: SELU_GAMMA } });
    case 'softplus': return b.op('Softplus', [x]);
    case 'softsign': return b.op('Softsign', [x]);
    case 'swish': return b.op('Mul', [x, b.op('Sigmoid', [x])]);
    case 'hard_sigmoid': return b.op('Clip', [b.op('Add', [b.op('Mul', [x, c(alpha ?? 0.2)]), c(beta ?? 0.5)]), c(0), c(1)]);
    case 'hard_swish': return b.op('Mul', [x, b.op('Div', [b.op('Clip', [b.op('Add', [x, c(3)]), c(0), c(6)]), c(6)])]);
    case 'leaky_relu': return b.op('LeakyRelu', [x], { alpha: { float: alpha ?? 0.3 } });
    case 'gelu': return b.op('Mul', [b.op('Mul', [x, c(0.5)]), b.op('Add', [c(1), b.op('Erf', [b.op('Mul', [x, c(Math.SQRT1_2)])])])]);
    case 'gelu_new': return b.op('Mul', [b.op('Mul', [x, c(0.5)]), b.op('Add', [c(1), b.op('Tanh', [geluInner(b, x)])])]);
    case 'mish': return b.op('Mul', [x, b.op('Tanh', [b.op('Softplus', [x])])]);
    case 'exp': return b.op('Exp', [x]);
    case 'erf': return b.op('Erf', [x]);
    case 'prelu': return b.op('PRelu', [x, slope!]);
    case 'thresholded_relu': return b.op('Mul', [x, b.op('Cast', [b.op('Greater', [x, c(alpha ?? 1)])], { to: 1 })]);
  }
}

function geluInner(b: OnnxBuilder, x: string): string {
  const c = (v: number) => b.scalar(v);
  return b.op('Mul', [c(Math.sqrt(2 / Math.PI)), b.op('Add', [x, b.op('Mul', [c(0.044715), b.op('Mul', [x, b.op('Mul', [x, x])])])])]);
}

/** g masked: g where `cond`, else 0 (a product with the cast mask: onnxruntime's Where broadcasting a scalar is slower). */
export function masked(b: OnnxBuilder, cond: string, g: string): string {
  return b.op('Mul', [g, b.op('Cast', [cond], { to: 1 })]);
}

/** The VJP g·f'(x) of activation `fn` at x, whose output was y. */
export function emitActivationGrad(b: OnnxBuilder, fn: ActivationFn, x: string, y: string, g: string, alpha: number | undefined, slope?: string, beta?: number): string {
  const c = (v: number) => b.scalar(v);
  const mul = (...xs: string[]) => xs.reduce((acc, t) => b.op('Mul', [acc, t]));
  const between = (lo: number, hi: number, loOp = 'Greater', hiOp = 'LessOrEqual') => b.op('And', [b.op(loOp, [x, c(lo)]), b.op(hiOp, [x, c(hi)])]);
  switch (fn) {
    case 'linear': return g;
    case 'relu': return masked(b, b.op('Greater', [x, c(0)]), g);
    case 'relu6': return masked(b, between(0, 6), g);
    case 'sigmoid': return mul(g, y, b.op('Sub', [c(1), y]));
    case 'tanh': return mul(g, b.op('Sub', [c(1), b.op('Mul', [y, y])]));
    case 'softmax': return mul(y, b.op('Sub', [g, b.op('ReduceSum', [mul(g, y), b.ints([-1])], { keepdims: 1 })]));
    case 'elu': return b.op('Where', [b.op('Greater', [x, c(0)]), g, mul(g, b.op('Add', [y, c(1)]))]);
    case 'selu': return b.op('Where', [b.op('Greater', [x, c(0)]), mul(g, c(SELU_GAMMA)), mul(g, b.op('Add', [y, c(SELU_GAMMA * SELU_ALPHA)]))]);
    case 'softplus': return mul(g, b.op('Sigmoid', [x]));
    case 'softsign': {
      const d = b.op('Add', [c(1), b.op('Abs', [x])]);
      return b.op('Div', [g, b.op('Mul', [d, d])]);
    }
    case 'swish': {
      const s = b.op('Sigmoid', [x]);
      return mul(g, s, b.op('Add', [c(1), mul(x, b.op('Sub', [c(1), s]))]));
    }
    case 'hard_sigmoid': {
      // The clip's input a·x + b in [0, 1] (tfjs' clip gradient is inclusive).
      const u = b.op('Add', [mul(x, c(alpha ?? 0.2)), c(beta ?? 0.5)]);
      return masked(b, b.op('And', [b.op('GreaterOrEqual', [u, c(0)]), b.op('LessOrEqual', [u, c(1)])]), mul(g, c(alpha ?? 0.2)));
    }
    case 'hard_swish': {
      const r = b.op('Div', [b.op('Clip', [b.op('Add', [x, c(3)]), c(0), c(6)]), c(6)]);
      const inner = b.op('Where', [between(-3, 3), b.op('Div', [x, c(6)]), c(0)]);
      return mul(g, b.op('Add', [r, inner]));
    }
    case 'leaky_relu': return b.op('Where', [b.op('Greater', [x, c(0)]), g, mul(g, c(alpha ?? 0.3))]);
    case 'gelu': {
      const cdf = mul(c(0.5), b.op('Add', [c(1), b.op('Erf', [mul(x, c(Math.SQRT1_2))])]));
      const pdf = mul(c(1 / Math.sqrt(2 * Math.PI)), b.op('Exp', [mul(c(-0.5), x, x)]));
      return mul(g, b.op('Add', [cdf, mul(x, pdf)]));
    }
    case 'gelu_new': {
      const t = b.op('Tanh', [geluInner(b, x)]);
      const du = mul(c(Math.sqrt(2 / Math.PI)), b.op('Add', [c(1), mul(c(3 * 0.044715), x, x)]));
      const d = b.op('Add', [mul(c(0.5), b.op('Add', [c(1), t])), mul(c(0.5), x, b.op('Sub', [c(1), mul(t, t)]), du)]);
      return mul(g, d);
    }
    case 'mish': {
      const t = b.op('Tanh', [b.op('Softplus', [x])]);
      return mul(g, b.op('Add', [t, mul(x, b.op('Sub', [c(1), mul(t, t)]), b.op('Sigmoid', [x]))]));
    }
    case 'exp': return mul(g, y);
    case 'erf': return mul(g, mul(c(2 / Math.sqrt(Math.PI)), b.op('Exp', [b.op('Neg', [mul(x, x)])])));
    case 'prelu': return b.op('Where', [b.op('Greater', [x, c(0)]), g, mul(g, slope!)]);
    case 'thresholded_relu': return masked(b, b.op('Greater', [x, c(alpha ?? 1)]), g);
  }
}
