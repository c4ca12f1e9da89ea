/**
 * advkit's minimum-norm attacks on exported points, with the budgets bench/minnorm_compare.py
 * gives the references, for the side-by-side in docs/performance.md. Prints one JSON line: per
 * attack the median distance over the clean-correct points (an example not broken counts as
 * infinitely far; null when more than half are), how many it broke, its seconds and the
 * per-example distances (null: not broken).
 * usage: npx vite-node bench/minnorm.ts -- --model DIR --x X.npy --y Y.npy
 *          [--attacks cw,deepfool,ead,fmn-l2,fmn-l1,fmn-linf] [--backend auto] [--bs 100]
 *          [--cw '{"binarySteps":1,"initialConst":1,"steps":50}'] (any attack's options as JSON)
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { readNpy, readNpyFloat32 } from '../src/data/npy.js';
import { loadClassifier } from '../src/models/io.js';
import { ATTACKS, type AttackName } from '../src/attacks/registry.js';
import type { NormName } from '../src/util/norms.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const status = await initBackend(opt('backend') ?? 'auto');
const { classifier: model } = await loadClassifier(opt('model') ?? 'model');
const xs = await readNpyFloat32(opt('x') ?? 'x.npy');
const ys = await readNpy(opt('y') ?? 'y.npy');
const labels = Int32Array.from(ys.data as ArrayLike<number>, Number);
const n = labels.length;
const shape = xs.shape.slice(1) as [number, number, number];
const per = shape[0] * shape[1] * shape[2];
const bs = Number(opt('bs') ?? 100);
const x = tf.tensor4d(xs.data, [n, ...shape]);
const pred = await tf.tidy(() => tf.argMax(model.logits(x), 1)).data();
const correct = Array.from({ length: n }, (_, i) => i).filter((i) => pred[i] === labels[i]);

/** The runs: an attack, its norm and options (fmn-l2 is FMN under L2). */
const RUNS: Record<string, { attack: AttackName; norm: NormName }> = {
  cw: { attack: 'cw', norm: 'l2' }, deepfool: { attack: 'deepfool', norm: 'l2' }, 'deepfool-linf': { attack: 'deepfool', norm: 'linf' },
  ead: { attack: 'ead', norm: 'l1' }, 'fmn-l2': { attack: 'fmn', norm: 'l2' }, 'fmn-l1': { attack: 'fmn', norm: 'l1' }, 'fmn-linf': { attack: 'fmn', norm: 'linf' },
  'fab-l2': { attack: 'fab-t', norm: 'l2' }, 'fab-linf': { attack: 'fab-t', norm: 'linf' },
};
const out: Record<string, unknown> = { examples: n, cleanCorrect: correct.length, backend: status.name };
for (const key of (opt('attacks') ?? 'cw,deepfool,ead,fmn-l2,fmn-l1').split(',')) {
  const run = RUNS[key];
  if (!run) throw new Error(`unknown run ${key}; use ${Object.keys(RUNS).join(', ')}`);
  const options = JSON.parse(opt(key) ?? '{}') as Record<string, unknown>;
  const t0 = performance.now();
  const dist: Array<number | null> = [];
  for (let s = 0; s < correct.length; s += bs) {
    const idx = correct.slice(s, s + bs);
    const xb = tf.tensor4d(Float32Array.from(idx.flatMap((i) => Array.from(xs.data.subarray(i * per, (i + 1) * per)))), [idx.length, ...shape]);
    const r = await ATTACKS[run.attack](model, xb, Int32Array.from(idx, (i) => labels[i]!), { eps: 1e9, norm: run.norm, ...options });
    r.adversarial.dispose();
    xb.dispose();
    r.minimumNorm!.forEach((d) => dist.push(Number.isFinite(d) ? d : null));
    process.stderr.write(`minnorm: ${key} ${Math.min(s + bs, correct.length)}/${correct.length}\n`);
  }
  const sorted = dist.map((d) => d ?? Infinity).sort((a, b) => a - b);
  const m = sorted.length;
  const median = m ? (m % 2 ? sorted[m >> 1]! : (sorted[(m >> 1) - 1]! + sorted[m >> 1]!) / 2) : null;
  out[key] = { options, median: median !== null && Number.isFinite(median) ? median : null, broken: dist.filter((d) => d !== null).length, attacked: m, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)), distances: dist.map((d) => (d === null ? null : Number(d.toFixed(6)))) };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
