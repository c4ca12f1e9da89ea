/** Preprocessor specs on the command line: `bit-depth:4,median:3,jpeg:75,tv:0.1,noise:0.25`. */
import { preprocessorFromSpec, PREPROCESSOR_KINDS, type Preprocessor, type PreprocessorKind } from '../defenses/preprocess.js';
import { InvalidArgumentError } from '../util/errors.js';

/** Parses `bit-depth:4,median:3,noise:0.25` into preprocessors (noise seeded with `seed`). */
export function parseDefense(text: string, seed: number, flag = '--defense'): Preprocessor[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((part) => {
    const [name, arg] = part.split(':');
    const v = Number(arg);
    const bad = (what: string) => new InvalidArgumentError(`Error in ${flag}: ${JSON.stringify(part)} ${what}; use bit-depth:B, median:K, jpeg:Q, tv:WEIGHT or noise:SIGMA.`);
    if (arg === undefined || !Number.isFinite(v)) throw bad('needs a number after the colon');
    if (!(PREPROCESSOR_KINDS as readonly string[]).includes(name!)) throw bad('is not a known preprocessor');
    try {
      return preprocessorFromSpec({ kind: name as PreprocessorKind, args: name === 'noise' ? [v, seed] : [v] });
    } catch (err) {
      throw new InvalidArgumentError(`Error in ${flag}: ${(err as Error).message.replace(/^Error in \w+: /, '')}`);
    }
  });
}
