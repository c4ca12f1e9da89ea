/** Reads an example set written by `advkit attack` (its x_adv.npy, or else its PNGs). */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { makeDataset, readNpy, type Dataset } from '../data/index.js';
import { DataError } from '../util/errors.js';
import { exists } from '../util/fs.js';

export interface ExampleSet {
  /** The adversarial images with their true labels, in manifest order. */
  ds: Dataset;
  /** Whether each example fooled the model (from the manifest). */
  success: boolean[];
  /** The PNG name of each example, relative to the set. */
  names: string[];
}

export async function isExampleSet(dir: string): Promise<boolean> {
  return exists(path.join(dir, 'manifest.jsonl'));
}

/** With `npyOnly`, a set without x_adv.npy is an error instead of being read from its (rounded) PNGs. */
export async function readExampleSet(dir: string, flag: string, options: { npyOnly?: boolean; classNames?: readonly string[] } = {}): Promise<ExampleSet> {
  const lines = (await fsp.readFile(path.join(dir, 'manifest.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { index: number; label: number; success: boolean; file?: string });
  let images: Float32Array;
  let shape: [number, number, number];
  if (await exists(path.join(dir, 'x_adv.npy'))) {
    const x = await readNpy(path.join(dir, 'x_adv.npy'));
    images = Float32Array.from(x.data);
    shape = [x.shape[1]!, x.shape[2]!, x.shape[3] ?? 1];
  } else {
    if (options.npyOnly) throw new DataError(`Error in ${flag}: ${dir} holds an example set without x_adv.npy; write it with advkit attack --format png,npy.`);
    const decoded = await Promise.all(lines.map(async (l) => {
      if (!l.file) throw new DataError(`Error in ${flag}: ${dir} has neither x_adv.npy nor PNG files; write it with advkit attack --format png or npy.`);
      return sharp(path.join(dir, l.file)).raw().toBuffer({ resolveWithObject: true });
    }));
    const first = decoded[0]!.info;
    shape = [first.height, first.width, first.channels];
    images = new Float32Array(lines.length * first.height * first.width * first.channels);
    decoded.forEach((d, i) => { for (let k = 0; k < d.data.length; k++) images[i * d.data.length + k] = d.data[k]! / 255; });
  }
  const labels = Int32Array.from(lines.map((l) => l.label));
  const k = Math.max(2, labels.reduce((a, b) => Math.max(a, b), 0) + 1);
  const classNames = options.classNames ?? Array.from({ length: k }, (_, i) => String(i));
  return {
    ds: makeDataset(`${dir} (x_adv)`, images, labels, shape, classNames),
    success: lines.map((l) => l.success),
    names: lines.map((l) => `png/${String(l.index).padStart(5, '0')}.png`),
  };
}
