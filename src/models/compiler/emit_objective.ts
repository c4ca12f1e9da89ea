/**
 * The attack objectives' gradients with respect to the logits, as ONNX ops (emit_onnx.ts puts
 * them between the forward and the backward pass, so one onnxruntime run gives the logits and
 * the input gradient). Closed forms of attacks/losses.ts, per sample:
 *
 * - ce: ∂CE/∂z = softmax(z) − e_y (targeted: −(softmax(z) − e_t));
 * - margin: e_j − e_y with j = argmax_{i≠y} z_i (targeted: e_t − e_j, j the best class ≠ t);
 * - dlr: N/D with N = max_{i≠y} z_i − z_y, D = z_π1 − z_π3 + 1e-12: (∂N − (N/D)·∂D)/D; targeted
 *   N = z_t − z_y, D = z_π1 − (z_π3 + z_π4)/2 + 1e-12 (π sorts z, decreasing; short rows clamp π);
 * - gap: z_a − z_b (FAB's boundary, APGD-T's few-class margin): e_a − e_b;
 * - kl: KL(p ‖ softmax(z)): softmax(z)·Σp − p.
 *
 * Ties go to one class (the first), where tfjs' max gradient gives each tied class the whole.
 */
import type { OnnxBuilder } from './onnx_builder.js';

export const OBJECTIVE_KINDS = ['ce', 'ce-targeted', 'margin', 'margin-targeted', 'dlr', 'dlr-targeted', 'gap', 'kl'] as const;
export type ObjectiveKind = (typeof OBJECTIVE_KINDS)[number];

/** The extra inputs of an objective's gradient model, besides the images. */
export function objectiveInputs(kind: ObjectiveKind, k: number): Array<{ name: string; shape: number[]; int64?: boolean }> {
  if (kind === 'kl') return [{ name: 'reference', shape: [-1, k] }];
  const labels = { name: 'labels', shape: [-1], int64: true };
  return kind === 'gap' || kind === 'dlr-targeted' ? [labels, { name: 'other', shape: [-1], int64: true }] : [labels];
}

const BIG = 1e9;

/** ∂(Σ objective)/∂z for logits `z` [N, k]. */
export function emitObjectiveGrad(b: OnnxBuilder, kind: ObjectiveKind, z: string, k: number): string {
  const depth = b.ints([k], []);
  const onehot = (idx: string) => b.op('OneHot', [idx, depth, b.floats([0, 1], [2], 'onoff')], { axis: -1 });
  const sub = (x: string, y: string) => b.op('Sub', [x, y]);
  const mul = (x: string, y: string) => b.op('Mul', [x, y]);
  const div = (x: string, y: string) => b.op('Div', [x, y]);
  const neg = (x: string) => b.op('Neg', [x]);
  const col = (t: string, i: number) => b.op('Gather', [t, b.ints([i])], { axis: 1 });
  /** The best class other than the one-hot's, as a one-hot, and its logit [N, 1]. */
  const bestOther = (oh: string) => {
    const maskedZ = sub(z, mul(oh, b.scalar(BIG)));
    return { oh: onehot(b.op('ArgMax', [maskedZ], { axis: 1, keepdims: 0 })), value: b.op('ReduceMax', [maskedZ], { axes: [1], keepdims: 1 }) };
  };
  const pick = (oh: string) => b.op('ReduceSum', [mul(z, oh), b.ints([1])], { keepdims: 1 });
  switch (kind) {
    case 'ce': case 'ce-targeted': {
      const d = sub(b.op('Softmax', [z], { axis: 1 }), onehot('labels'));
      return kind === 'ce' ? d : neg(d);
    }
    case 'margin': case 'margin-targeted': {
      const y = onehot('labels');
      const d = sub(bestOther(y).oh, y);
      return kind === 'margin' ? d : neg(d);
    }
    case 'gap': return sub(onehot('labels'), onehot('other'));
    case 'kl': return sub(mul(b.op('Softmax', [z], { axis: 1 }), b.op('ReduceSum', [b.op('Identity', ['reference']), b.ints([1])], { keepdims: 1 })), 'reference');
    case 'dlr': case 'dlr-targeted': {
      const top = Math.min(k, 4);
      const [values, indices] = b.node('TopK', [z, b.ints([top])], { axis: 1, largest: 1, sorted: 1 }, 2) as [string, string];
      const at = (i: number) => Math.min(i, top - 1);
      const v = (i: number) => col(values, at(i));
      const e = (i: number) => onehot(b.op('Squeeze', [col(indices, at(i)), b.ints([1])]));
      let num: string; let dNum: string; let den: string; let dDen: string;
      if (kind === 'dlr') {
        const y = onehot('labels');
        const other = bestOther(y);
        num = sub(other.value, pick(y));
        dNum = sub(other.oh, y);
        den = b.op('Add', [sub(v(0), v(2)), b.scalar(1e-12)]);
        dDen = sub(e(0), e(2));
      } else {
        const t = onehot('labels');
        const y = onehot('other');
        num = sub(pick(t), pick(y));
        dNum = sub(t, y);
        den = b.op('Add', [sub(v(0), mul(b.scalar(0.5), b.op('Add', [v(2), v(3)]))), b.scalar(1e-12)]);
        dDen = sub(e(0), mul(b.scalar(0.5), b.op('Add', [e(2), e(3)])));
      }
      const value = div(num, den);
      return div(sub(dNum, mul(value, dDen)), den);
    }
  }
}
