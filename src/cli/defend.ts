/**
 * `advkit defend`: applies a preprocessing chain (bit depth, median, JPEG, TV, noise) to an image
 * folder (`DIR/<class>/*.png`, written back as the same tree) or to an example set written by
 * `advkit attack` (its x_adv.npy, or its PNGs; written as png/ and x.npy). With --model, also
 * reports the model's accuracy before and after the chain.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { batches, checkShapes, makeDataset, readImageFolder, resizeDataset, size, type Dataset } from '../data/index.js';
import { encodeNpy } from '../data/npy.js';
import { applyPreprocessors } from '../defenses/preprocess.js';
import { loadModel, withModelOptions, withResizeOption, type ModelCliOptions } from './model_options.js';
import { accuracy } from '../defenses/train.js';
import { DataError, InvalidArgumentError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { writePng } from '../util/png.js';
import { action, intOption, log, printJson, startBackend, withCommonOptions } from './common.js';
import { parseDefense } from './defense_spec.js';
import { isExampleSet, readExampleSet } from '../attacks/example_set.js';

/** An example set (all its examples) or an image folder, with an output PNG name per image. */
async function readInput(dir: string, target: [number, number, number] | undefined, mode: 'fit' | 'crop'): Promise<{ ds: Dataset; names: string[] }> {
  if (!(await exists(dir))) throw new DataError(`Error in --input: ${dir} does not exist.`);
  if (await isExampleSet(dir)) {
    const set = await readExampleSet(dir, { flag: '--input' });
    if (!target) return set;
    const r = resizeDataset(set.ds, target, mode);
    if (r.note) log(`advkit: note: data: ${r.note} (--resize ${mode})`);
    return { ds: r.ds, names: set.names };
  }
  const folder = await readImageFolder(dir, target ? { resize: [target[0], target[1]], fit: mode, channels: target[2] === 1 || target[2] === 3 ? target[2] : undefined } : {});
  if (folder.resized) log(`advkit: note: data: ${folder.resized} of ${folder.files.length} images resized to ${target![0]}x${target![1]} (--resize ${mode})`);
  const names = folder.files.map((f) => path.join(path.relative(dir, path.dirname(f)), `${path.basename(f, path.extname(f))}.png`));
  // a.png, a.jpg and a.webp would all be written as a.png: one would silently replace the others.
  const first = new Map<string, string>();
  for (const [i, n] of names.entries()) {
    const prev = first.get(n);
    if (prev !== undefined) throw new DataError(`Error in --input: ${prev} and ${folder.files[i]} would both be written as ${n}; rename one of them.`);
    first.set(n, folder.files[i]!);
  }
  return { ds: makeDataset(dir, folder.images, folder.labels, folder.shape, folder.classNames), names };
}

export function defendCommand(): Command {
  return withResizeOption(withModelOptions(withCommonOptions(new Command('defend'))
    .requiredOption('--input <dir>', 'an image folder (DIR/<class>/*.png) or an advkit attack output directory')
    .requiredOption('--defense <list>', 'comma list of bit-depth:B, median:K, jpeg:Q, tv:WEIGHT, noise:SIGMA (applied in order)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--model <dir>', 'also report the model\'s accuracy before and after the defense')
    .option('--seed <n>', 'seed for randomized preprocessing', intOption(0, 2 ** 31 - 1), 0)
    .option('--force', 'write into a non-empty output directory')))
    .action(action(async (o: Partial<ModelCliOptions> & { input: string; defense: string; out: string; model?: string; seed: number; force?: boolean; backend?: string; json?: boolean }) => {
      const chain = parseDefense(o.defense, o.seed);
      // Compared after resolving links: an --out that links to the input would overwrite it.
      const real = (p: string) => fsp.realpath(p).catch(() => path.resolve(p));
      const [inReal, outReal] = await Promise.all([real(o.input), real(o.out)]);
      if (inReal === outReal || outReal.startsWith(inReal + path.sep) || inReal.startsWith(outReal + path.sep)) throw new InvalidArgumentError(`Error in --out: ${o.out} is (or contains, or lies in) the input ${o.input} once links are resolved; the inputs would be overwritten. Choose a separate directory.`);
      if (!o.force && (await exists(o.out)) && (await fsp.readdir(o.out)).length > 0) throw new InvalidArgumentError(`Error in --out: ${o.out} is not empty; choose another directory or pass --force.`);
      const status = await startBackend(o.backend);
      // With --model, the images are read at its input size (--resize fit by default) and checked against it.
      const classifier = o.model ? (await loadModel({ ...o, model: o.model })).classifier : undefined;
      const mode = o.resize?.mode ?? (classifier ? 'fit' : 'none');
      const target: [number, number, number] | undefined = mode === 'none' ? undefined
        : o.resize?.size ? [o.resize.size[0], o.resize.size[1], classifier?.inputShape[2] ?? 3] : classifier ? [...classifier.inputShape] : undefined;
      if (mode !== 'none' && !target) throw new InvalidArgumentError(`Error in --resize: ${mode} resizes to the model's input size; give --model, or a size (--resize H,W).`);
      const { ds, names } = await readInput(o.input, target, mode === 'crop' ? 'crop' : 'fit');
      if (classifier) checkShapes('--model/--input', classifier.inputShape, ds);
      const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
      const defended = new Float32Array(ds.images.length);
      for (const b of batches(ds, 128)) {
        const y = tf.tidy(() => applyPreprocessors(chain, b.x));
        defended.set(await y.data(), b.start * per);
        tf.dispose([y, b.x, b.y]);
      }
      for (let i = 0; i < size(ds); i++) await writePng(path.join(o.out, names[i]!), defended.subarray(i * per, (i + 1) * per), ds.shape);
      await writeFileAtomic(path.join(o.out, 'x.npy'), encodeNpy(defended, [size(ds), ...ds.shape]));
      await writeFileAtomic(path.join(o.out, 'y.npy'), encodeNpy(Int32Array.from(ds.labels), [size(ds)]));
      const summary: Record<string, unknown> = { input: o.input, out: path.resolve(o.out), examples: size(ds), defense: chain.map((p) => p.name), backend: status.name };
      if (classifier) {
        summary.accuracyBefore = await accuracy((x) => classifier.logits(x), ds);
        summary.accuracyAfter = await accuracy((x) => classifier.logits(x), makeDataset(ds.name, defended.map((v) => Math.min(1, Math.max(0, v))), ds.labels, ds.shape, ds.classNames));
      }
      log(`advkit: wrote ${size(ds)} defended images to ${o.out}`);
      if (o.json) return printJson(summary);
      process.stdout.write(`${chain.map((p) => p.name).join(' -> ')} applied to ${size(ds)} images of ${o.input}; written to ${path.resolve(o.out)}\n`);
      if (o.model) process.stdout.write(`model accuracy: ${(100 * (summary.accuracyBefore as number)).toFixed(2)}% before, ${(100 * (summary.accuracyAfter as number)).toFixed(2)}% after\n`);
    }));
}
