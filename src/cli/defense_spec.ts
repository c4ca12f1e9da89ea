/** Preprocessor specs on the command line: `bit-depth:4,median:3,jpeg:75,tv:0.1,noise:0.25`. */
import { bitDepth, gaussianNoise, jpeg, medianSmoothing, tvMinimization, type Preprocessor } from '../defenses/preprocess.js';
import { InvalidArgumentError } from '../util/errors.js';

/** Parses `bit-depth:4,median:3,noise:0.25` into preprocessors. */
export function parseDefense(text: string, seed: number, flag = '--defense'): Preprocessor[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((part) => {
    const [name, arg] = part.split(':');
    const v = Number(arg);
    const bad = (what: string) => new InvalidArgumentError(`Error in ${flag}: ${JSON.stringify(part)} ${what}; use bit-depth:B, median:K, jpeg:Q, tv:WEIGHT or noise:SIGMA.`);
    if (arg === undefined || !Number.isFinite(v)) throw bad('needs a number after the colon');
    try {
      if (name === 'bit-depth') return bitDepth(v);
      if (name === 'median') return medianSmoothing(v);
      if (name === 'noise') return gaussianNoise(v, seed);
      if (name === 'jpeg') return jpeg(v);
      if (name === 'tv') return tvMinimization(v);
    } catch (err) {
      throw new InvalidArgumentError(`Error in ${flag}: ${(err as Error).message.replace(/^Error in \w+: /, '')}`);
    }
    throw bad('is not a known preprocessor');
  });
}
