/**
 * `advkit defend`: applies a preprocessing chain (bit depth, median, JPEG, TV, noise) to an image
 * folder (`DIR/<class>/*.png`, written back as the same tree) or to an example set written by
 * `advkit attack` (its x_adv.npy, or its PNGs; written as png/ and x.npy). With --model, also
 * reports the model's accuracy before and after the chain.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { batches, makeDataset, readImageFolder, readNpy, size, type Dataset } from '../data/index.js';
import { encodeNpy } from '../data/npy.js';
import { loadClassifier } from '../models/io.js';
import type { Preprocessor } from '../defenses/preprocess.js';
import { DataError, InvalidArgumentError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fs.js';
import { action, intOption, log, printJson, startBackend, withCommonOptions } from './common.js';
import { parseDefense } from './defense_spec.js';

interface Input {
  ds: Dataset;
  /** Output file (relative) per example. */
  names: string[];
}

async function readInput(dir: string): Promise<Input> {
  if (!(await exists(dir))) throw new DataError(`Error in --input: ${dir} does not exist.`);
  if (await exists(path.join(dir, 'manifest.jsonl'))) {
    const lines = (await fsp.readFile(path.join(dir, 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { index: number; label: number; file?: string });
    let images: Float32Array;
    let shape: [number, number, number];
    if (await exists(path.join(dir, 'x_adv.npy'))) {
      const x = await readNpy(path.join(dir, 'x_adv.npy'));
      images = Float32Array.from(x.data);
      shape = [x.shape[1]!, x.shape[2]!, x.shape[3] ?? 1];
    } else {
      const decoded = await Promise.all(lines.map(async (l) => {
        if (!l.file) throw new DataError(`Error in --input: ${dir} has neither x_adv.npy nor PNG files; write it with advkit attack --format png or npy.`);
        return sharp(path.join(dir, l.file)).raw().toBuffer({ resolveWithObject: true });
      }));
      const first = decoded[0]!.info;
      shape = [first.height, first.width, first.channels];
      images = new Float32Array(lines.length * first.height * first.width * first.channels);
      decoded.forEach((d, i) => { for (let k = 0; k < d.data.length; k++) images[i * d.data.length + k] = d.data[k]! / 255; });
    }
    const labels = Int32Array.from(lines.map((l) => l.label));
    const k = labels.reduce((a, b) => Math.max(a, b), 0) + 1;
    return { ds: makeDataset(dir, images, labels, shape, Array.from({ length: Math.max(k, 2) }, (_, i) => String(i))), names: lines.map((l) => `png/${String(l.index).padStart(5, '0')}.png`) };
  }
  const folder = await readImageFolder(dir);
  return {
    ds: makeDataset(dir, folder.images, folder.labels, folder.shape, folder.classNames),
    names: folder.files.map((f) => path.join(path.relative(dir, path.dirname(f)), `${path.basename(f, path.extname(f))}.png`)),
  };
}

async function accuracy(model: Awaited<ReturnType<typeof loadClassifier>>['classifier'], ds: Dataset, chain?: Preprocessor[]): Promise<number> {
  let ok = 0;
  for (const b of batches(ds, 128)) {
    const p = tf.tidy(() => tf.argMax(model.logits(chain ? chain.reduce((v, q) => q.apply(v), b.x) : b.x), 1));
    const pred = await p.data();
    ok += Array.from(pred).filter((v, i) => v === ds.labels[b.start + i]).length;
    tf.dispose([p, b.x, b.y]);
  }
  return ok / size(ds);
}

export function defendCommand(): Command {
  return withCommonOptions(new Command('defend').description('apply a preprocessing defense to an image folder or an advkit example set'))
    .requiredOption('--input <dir>', 'an image folder (DIR/<class>/*.png) or an advkit attack output directory')
    .requiredOption('--defense <list>', 'comma list of bit-depth:B, median:K, jpeg:Q, tv:WEIGHT, noise:SIGMA (applied in order)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--model <dir>', 'also report the model\'s accuracy before and after the defense')
    .option('--seed <n>', 'seed for randomized preprocessing', intOption(0, 2 ** 31 - 1), 0)
    .option('--force', 'write into a non-empty output directory')
    .action(action(async (o: { input: string; defense: string; out: string; model?: string; seed: number; force?: boolean; backend?: string; json?: boolean }) => {
      const chain = parseDefense(o.defense, o.seed);
      if (path.resolve(o.input) === path.resolve(o.out)) throw new InvalidArgumentError('Error in --out: must differ from --input (the inputs would be overwritten).');
      if (!o.force && (await exists(o.out)) && (await fsp.readdir(o.out)).length > 0) throw new InvalidArgumentError(`Error in --out: ${o.out} is not empty; choose another directory or pass --force.`);
      const status = await startBackend(o.backend);
      const { ds, names } = await readInput(o.input);
      const per = ds.shape[0] * ds.shape[1] * ds.shape[2];
      const defended = new Float32Array(ds.images.length);
      for (const b of batches(ds, 128)) {
        const y = tf.tidy(() => chain.reduce((v, q) => q.apply(v), b.x));
        defended.set(await y.data(), b.start * per);
        tf.dispose([y, b.x, b.y]);
      }
      for (let i = 0; i < size(ds); i++) {
        const raw = Buffer.alloc(per);
        for (let k = 0; k < per; k++) raw[k] = Math.round(255 * Math.min(1, Math.max(0, defended[i * per + k]!)));
        const png = await sharp(raw, { raw: { width: ds.shape[1], height: ds.shape[0], channels: ds.shape[2] as 1 | 3 } }).png({ compressionLevel: 9 }).toBuffer();
        await writeFileAtomic(path.join(o.out, names[i]!), png);
      }
      await writeFileAtomic(path.join(o.out, 'x.npy'), encodeNpy(defended, [size(ds), ...ds.shape]));
      await writeFileAtomic(path.join(o.out, 'y.npy'), encodeNpy(Int32Array.from(ds.labels), [size(ds)]));
      const summary: Record<string, unknown> = { input: o.input, out: path.resolve(o.out), examples: size(ds), defense: chain.map((p) => p.name), backend: status.name };
      if (o.model) {
        const { classifier } = await loadClassifier(o.model);
        summary.accuracyBefore = await accuracy(classifier, ds);
        summary.accuracyAfter = await accuracy(classifier, makeDataset(ds.name, defended.map((v) => Math.min(1, Math.max(0, v))), ds.labels, ds.shape, ds.classNames));
      }
      log(`advkit: wrote ${size(ds)} defended images to ${o.out}`);
      if (o.json) return printJson(summary);
      process.stdout.write(`${chain.map((p) => p.name).join(' -> ')} applied to ${size(ds)} images of ${o.input}; written to ${path.resolve(o.out)}\n`);
      if (o.model) process.stdout.write(`model accuracy: ${(100 * (summary.accuracyBefore as number)).toFixed(2)}% before, ${(100 * (summary.accuracyAfter as number)).toFixed(2)}% after\n`);
    }));
}
