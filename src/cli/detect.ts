/**
 * `advkit detect`: the feature-squeezing detector (Xu et al. 2018). Calibrates its threshold on
 * clean data to a false-positive rate and reports the detection rate on an adversarial set: an
 * example set written by `advkit attack --format npy` (only its successful examples) or any
 * data spec.
 */
import { Command } from 'commander';
import { parseDataSpec, subset, take, type Dataset, type ResizeSpec } from '../data/index.js';
import { featureSqueezing, defaultSqueezers } from '../defenses/detector.js';
import type { Classifier } from '../models/classifier.js';
import { loadDataFor, loadModel, withModelOptions, withResizeOption, type ModelCliOptions } from './model_options.js';
import { action, floatOption, intOption, log, printJson, startBackend, withCommonOptions } from './common.js';
import { parseDefense } from './defense_spec.js';
import { isExampleSet, readExampleSet } from '../attacks/example_set.js';

/** The successful examples of an `advkit attack --format npy` set, or a data spec. */
async function adversarialSet(spec: string, classNames: readonly string[], model: Classifier, resize: ResizeSpec | undefined, dataDir?: string): Promise<Dataset> {
  if (!(await isExampleSet(spec))) {
    parseDataSpec(spec);
    return loadDataFor(spec, model, resize, { split: 'test', dataDir });
  }
  const set = await readExampleSet(spec, { flag: '--adversarial', npyOnly: true, classNames });
  return subset(set.ds, set.success.flatMap((ok, i) => (ok ? [i] : [])), `${spec} (successful x_adv)`);
}

export function detectCommand(): Command {
  return withResizeOption(withModelOptions(withCommonOptions(new Command('detect'))
    .requiredOption('--model <dir>', 'model: a TensorFlow.js model directory or an ONNX file')
    .requiredOption('--adversarial <dir|spec>', 'an advkit attack example set written with --format npy, or a data spec')
    .option('--clean <spec>', 'clean data to calibrate the threshold on', 'mnist:train')
    .option('--fpr <f>', 'false-positive rate on clean data, in [0, 1)', floatOption(0, { max: 0.999999 }), 0.05)
    .option('--squeezers <list>', 'comma list of bit-depth:B and median:K (default bit-depth:1,median:3)')
    .option('--limit <n>', 'clean examples to calibrate on', intOption(1), 2000)
    .option('--data-dir <dir>', 'folder holding the Fashion-MNIST IDX files')))
    .action(action(async (o: ModelCliOptions & { model: string; adversarial: string; clean: string; fpr: number; squeezers?: string; limit: number; dataDir?: string; backend?: string; json?: boolean }) => {
      parseDataSpec(o.clean);
      const squeezers = o.squeezers ? parseDefense(o.squeezers, 0, '--squeezers') : defaultSqueezers();
      const status = await startBackend(o.backend);
      const { classifier } = await loadModel(o);
      const clean = take(await loadDataFor(o.clean, classifier, o.resize, { split: 'train', dataDir: o.dataDir }), o.limit);
      const adv = await adversarialSet(o.adversarial, clean.classNames, classifier, o.resize, o.dataDir);
      const report = await featureSqueezing(classifier, clean, adv, { fpr: o.fpr, squeezers });
      log(`advkit: calibrated on ${report.cleanExamples} clean examples of ${clean.name} (${status.name} backend)`);
      if (o.json) return printJson(report);
      process.stdout.write([
        `feature squeezing (${report.squeezers.join(', ')}), threshold ${report.threshold.toFixed(4)} for ${(100 * report.targetFpr).toFixed(1)}% false positives`,
        `  false positives on clean data  ${(100 * report.cleanFpr).toFixed(2)}% of ${report.cleanExamples}`,
        `  detection rate                 ${(100 * report.detectionRate).toFixed(2)}% of ${report.adversarialExamples} adversarial examples`,
      ].join('\n') + '\n');
    }));
}
