/**
 * `advkit certify`: randomized-smoothing certification (Cohen et al. 2019) of a model on a data
 * set: per example the smoothed class (or abstention) and the certified L2 radius; the
 * certified accuracy at each requested radius on stdout (or --json).
 */
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { datasetDigest, loadDataset, parseDataSpec, size, slice, take } from '../data/index.js';
import { certificationJson, CERTIFICATION_SCHEMA, summarizeCertificates, type CertificationFile } from '../defenses/certification.js';
import { lockDirectory, writeFileAtomic } from '../util/fs.js';
import { resolveShard, shardName, shardRange } from '../util/shard.js';
import { certify, type Certificate } from '../defenses/smoothing.js';
import { loadDataFor, loadModel, withModelOptions, withResizeOption, type ModelCliOptions } from './model_options.js';
import { InvalidArgumentError } from '../util/errors.js';
import { progressBar } from '../util/progress.js';
import { action, checkedModelDigest, floatOption, intOption, log, printJson, startBackend, withCommonOptions, withShardOptions } from './common.js';

interface CertifyCliOptions extends ModelCliOptions {
  model: string;
  data: string;
  sigma: number;
  n: number;
  n0: number;
  alpha: number;
  radii: string;
  limit?: number;
  seed: number;
  batchSize: number;
  dataDir?: string;
  backend?: string;
  json?: boolean;
  out?: string;
  shard?: string;
  shardCount?: number;
  expectModelSha256?: string;
}

export function certifyCommand(): Command {
  return withResizeOption(withModelOptions(withShardOptions(withCommonOptions(new Command('certify'))
    .requiredOption('--model <dir>', 'model directory (best trained with advkit train --noise SIGMA)')
    .requiredOption('--data <spec>', 'data spec (default split: test)')
    .requiredOption('--sigma <s>', 'noise standard deviation', floatOption(0, { exclusive: true }))
    .option('--n <n>', 'samples for the bound (at most 10,000,000 per example)', intOption(1, 10_000_000), 1000)
    .option('--n0 <n>', 'samples to pick the class', intOption(1, 10_000_000), 100)
    .option('--alpha <a>', 'failure probability of each certificate', floatOption(0, { exclusive: true, max: 0.5 }), 0.001)
    .option('--radii <list>', 'radii to report certified accuracy at', '0,0.25,0.5,0.75,1')
    .option('--limit <n>', 'certify the first n examples', intOption(1))
    .option('--seed <n>', 'seed', intOption(0, 2 ** 31 - 1), 0)
    .option('--batch-size <n>', 'noisy copies per forward pass', intOption(1, 65_536), 500)
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')
    .option('--out <dir>', 'also write certify.json (settings, provenance, every certificate) here'))))
    .action(action(async (o: CertifyCliOptions) => {
      parseDataSpec(o.data);
      const radii = o.radii.split(',').map((s) => Number(s.trim()));
      if (radii.some((r) => !Number.isFinite(r) || r < 0)) throw new InvalidArgumentError(`Error in --radii: ${JSON.stringify(o.radii)} must be a comma list of numbers >= 0.`);
      if (Math.pow(o.alpha, 1 / o.n) <= 0.5) throw new InvalidArgumentError(`Error in --n: ${o.n} samples can never certify at --alpha ${o.alpha}; use --n ${Math.ceil(Math.log(o.alpha) / Math.log(0.5)) + 1} or more.`);
      const shard = resolveShard(o.shard, o.shardCount);
      if (shard && !o.out) throw new InvalidArgumentError('Error in --shard: a shard\'s certificates are for advkit merge; give --out DIR to write them.');
      const status = await startBackend(o.backend);
      const digest = await checkedModelDigest(o.model, o.expectModelSha256);
      const { classifier, metadata } = await loadModel(o);
      let data = await loadDataFor(o.data, classifier, o.resize, { split: 'test', dataDir: o.dataDir, classNames: metadata?.classNames });
      if (o.limit !== undefined) data = take(data, o.limit);
      const tooHigh = data.labels.findIndex((l) => l >= classifier.numClasses);
      if (tooHigh >= 0) throw new InvalidArgumentError(`Error in --data: example ${tooHigh} has label ${data.labels[tooHigh]} but the model has ${classifier.numClasses} classes (0..${classifier.numClasses - 1}).`);
      const release = o.out ? await lockDirectory(path.resolve(o.out), '--out') : undefined;
      try {
        const { start, end } = shardRange(size(data), shard);
        const part = slice(data, start, end);
        if (shard) log(`advkit: shard ${shardName(shard)}: examples ${start}..${end - 1} of ${size(data)}`);
        const per = part.shape[0] * part.shape[1] * part.shape[2];
        const certs: Array<Certificate & { label: number }> = [];
        const bar = progressBar('certify [{bar}] {value}/{total} | ETA {eta_formatted}');
        bar.start(size(part));
        const t0 = performance.now();
        try {
          for (let i = 0; i < size(part); i++) {
            const x = tf.tensor4d(part.images.subarray(i * per, (i + 1) * per), [1, ...part.shape]);
            const c = await certify(classifier, x, { sigma: o.sigma, n: o.n, n0: o.n0, alpha: o.alpha, seed: o.seed + part.ids[i]!, batchSize: o.batchSize });
            x.dispose();
            certs.push({ ...c, label: part.labels[i]! });
            bar.update(i + 1);
          }
        } finally {
          bar.stop();
        }
        const summary = summarizeCertificates(certs, radii);
        const seconds = (performance.now() - t0) / 1000;
        log(`advkit: certified ${certs.length} examples on the ${status.name} backend in ${seconds.toFixed(1)} s`);
        if (o.out) {
          const file: CertificationFile = {
            schema: CERTIFICATION_SCHEMA, version: 1,
            config: { sigma: o.sigma, n: o.n, n0: o.n0, alpha: o.alpha, seed: o.seed, batchSize: o.batchSize, radii },
            provenance: { model: digest, data: { name: data.name, examples: size(data), sha256: datasetDigest(data) } },
            ...(shard ? { shard: { ...shard, start, end } } : {}),
            ...summary, certificates: certs,
          };
          await writeFileAtomic(path.join(path.resolve(o.out), 'certify.json'), certificationJson(file));
        }
        if (o.json) return printJson({ sigma: o.sigma, n: o.n, n0: o.n0, alpha: o.alpha, ...summary, seconds, certificates: certs });
        printCertified(o, summary, part.name);
      } finally {
        await release?.();
      }
    }));
}

export function printCertified(o: { sigma: number; n: number; alpha: number }, s: Pick<CertificationFile, 'examples' | 'abstained' | 'certified'>, name: string): void {
  process.stdout.write(`randomized smoothing, sigma ${o.sigma}, n ${o.n}, alpha ${o.alpha}, ${s.examples} examples of ${name} (${s.abstained} abstained)\n`);
  process.stdout.write(`L2 radius  certified accuracy\n${s.certified.map((c) => `${String(c.radius).padEnd(9)}  ${(100 * c.certifiedAccuracy).toFixed(1)}%`).join('\n')}\n`);
}
