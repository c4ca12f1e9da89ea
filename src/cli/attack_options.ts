/** `advkit attack`'s options: parsers for --targeted and --format, the attack's options from the flags, flag compatibility. */
import type { ModelCliOptions } from './model_options.js';
import { InvalidArgumentError as CommanderArgError } from 'commander';
import type { GradientAttackOptions } from '../attacks/index.js';
import { attacksTaking, optionRefusal, takesOption, type GRADIENT_ATTACKS } from '../attacks/registry.js';
import type { TargetMode } from '../attacks/dataset.js';
import { AdvkitError } from '../util/errors.js';

type AttackName = (typeof GRADIENT_ATTACKS)[number];

export interface AttackCliOptions extends ModelCliOptions {
  model: string;
  data: string;
  attack: AttackName;
  eps: number;
  norm: 'linf' | 'l2';
  steps?: number;
  relStepSize?: number;
  stepSize?: number;
  restarts?: number;
  targeted?: TargetMode;
  loss?: 'ce' | 'margin' | 'dlr';
  momentum?: number;
  earlyStop?: boolean;
  seed: number;
  limit?: number;
  batchSize: number;
  out: string;
  format: Array<'png' | 'npy'>;
  dataDir?: string;
  force?: boolean;
  workers?: number;
  backend?: string;
  json?: boolean;
  shard?: string;
  shardCount?: number;
  expectModelSha256?: string;
}

export function targetOption(value: string): TargetMode {
  if (value === 'random' || value === 'least-likely') return value;
  const n = Number(value);
  if (value.trim() !== '' && Number.isInteger(n) && n >= 0) return n;
  throw new CommanderArgError(`must be random, least-likely or a class index, got ${JSON.stringify(value)}.`);
}

export function formatOption(value: string): Array<'png' | 'npy'> {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = parts.find((p) => p !== 'png' && p !== 'npy');
  if (bad !== undefined || parts.length === 0) throw new CommanderArgError(`must be a comma list of png and npy, got ${JSON.stringify(value)}.`);
  return [...new Set(parts)] as Array<'png' | 'npy'>;
}

/**
 * The flags that set an attack option, for `advkit attack` and `advkit eval`: which attacks a flag
 * applies to comes from the registry (attacks/registry.ts), not from lists written here.
 */
export const ATTACK_FLAGS = Object.freeze({
  '--steps': 'steps', '--rel-step-size': 'relStepSize', '--step-size': 'absStepSize', '--restarts': 'restarts', '--loss': 'loss',
  '--momentum': 'momentum', '--early-stop': 'earlyStop', '--targeted': 'goal', '--square-queries': 'queries',
} as const);
export type AttackFlag = keyof typeof ATTACK_FLAGS;

/** "(bim, pgd, ...)" for a flag's help text. */
export function flagTakers(flag: AttackFlag): string {
  return `(${attacksTaking(ATTACK_FLAGS[flag]).join(', ')})`;
}

/** The flags `advkit attack` was given that set attack options, with their values. */
function givenFlags(o: AttackCliOptions): Array<[AttackFlag, unknown]> {
  const given: Array<[AttackFlag, unknown]> = [['--steps', o.steps], ['--rel-step-size', o.relStepSize], ['--step-size', o.stepSize], ['--restarts', o.restarts], ['--loss', o.loss], ['--momentum', o.momentum], ['--early-stop', o.earlyStop], ['--targeted', o.targeted]];
  return given.filter(([, v]) => v !== undefined);
}

/** The attack's options from the CLI's: the flags given, each attack's own defaults elsewhere. */
export function attackOptions(o: AttackCliOptions): GradientAttackOptions {
  const opts: Record<string, unknown> = { eps: o.eps, norm: o.norm, seed: o.seed };
  if (takesOption(o.attack, 'loss')) opts.loss = o.loss ?? 'ce';
  for (const [flag, v] of givenFlags(o)) if (flag !== '--targeted') opts[ATTACK_FLAGS[flag]] = v;
  return opts as unknown as GradientAttackOptions;
}

/** Refuses a flag the attack does not read (it would be ignored), naming the attacks that do. */
export function checkCompatible(o: AttackCliOptions): void {
  const bad = (flag: string, why: string) => new AdvkitError('E_USAGE', `Error in ${flag}: ${why}`, 2);
  for (const [flag] of givenFlags(o)) {
    const why = optionRefusal(o.attack, ATTACK_FLAGS[flag], flag);
    if (why) throw bad(flag, why);
  }
  if (o.relStepSize !== undefined && o.stepSize !== undefined) throw bad('--step-size', 'give either --rel-step-size or --step-size, not both.');
}
