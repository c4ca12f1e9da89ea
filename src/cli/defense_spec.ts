/**
 * Preprocessor specs on the command line (`bit-depth:4,median:3,jpeg:75,tv:0.1,noise:0.25`) and
 * the --defense, --defense-gradient and --eot flags `advkit attack` and `advkit eval` share.
 */
import { Option, type Command } from 'commander';
import { defend, preprocessorFromSpec, PREPROCESSOR_KINDS, withGradient, type Preprocessor, type PreprocessorKind } from '../defenses/preprocess.js';
import type { Classifier } from '../models/classifier.js';
import { InvalidArgumentError } from '../util/errors.js';
import { intOption } from './common.js';

export interface DefenseFlagValues {
  defense?: string | null;
  defenseGradient?: 'auto' | 'exact' | 'bpda' | null;
  eot?: number | null;
  seed?: number;
}

/** Adds --defense, --defense-gradient and --eot. */
export function withDefenseOptions(cmd: Command): Command {
  return cmd
    .option('--defense <list>', 'preprocessing defense in front of the model: comma list of bit-depth:B, median:K, jpeg:Q, tv:WEIGHT, noise:SIGMA')
    .addOption(new Option('--defense-gradient <mode>', 'how attacks differentiate the defense: auto (BPDA where not differentiable, EOT where random), exact (naive: shows the illusion), bpda').choices(['auto', 'exact', 'bpda']).default('auto'))
    .option('--eot <n>', 'draws averaged per call for randomized defenses', intOption(1, 1000));
}

/** The classifier behind the --defense chain (itself when there is none). */
export function withDefense(model: Classifier, o: DefenseFlagValues): Classifier {
  if (!o.defense) return model;
  const chain = parseDefense(o.defense, o.seed ?? 0).map((p) => (o.defenseGradient && o.defenseGradient !== 'auto' ? withGradient(p, o.defenseGradient) : p));
  return defend(model, chain, { eot: o.eot ?? undefined });
}

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
