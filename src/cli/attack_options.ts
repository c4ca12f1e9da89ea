/**
 * The attack flags `advkit attack` and `advkit eval` share, defined once (same spelling, same
 * defaults, help naming the attacks that read each, from the registry); parsers for --targeted
 * and --format; the attack's options from the flags; flag compatibility.
 */
import type { ModelCliOptions } from './model_options.js';
import { InvalidArgumentError as CommanderArgError, Option, type Command } from 'commander';
import type { GradientAttackOptions } from '../attacks/index.js';
import { attacksTaking, normRefusal, optionRefusal, takesOption, type AttackName } from '../attacks/registry.js';
import type { TargetMode } from '../attacks/dataset.js';
import { AdvkitError } from '../util/errors.js';
import { floatOption, intOption } from './common.js';
import type { NormName } from '../util/norms.js';

export interface AttackCliOptions extends ModelCliOptions, AttackFlagValues {
  model: string;
  data: string;
  attack: AttackName;
  eps: number;
  norm: NormName;
  seed: number;
  allowLargeEps?: boolean;
  defense?: string;
  defenseGradient?: 'auto' | 'exact' | 'bpda';
  eot?: number;
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

/** The values of the shared attack flags. */
export interface AttackFlagValues {
  steps?: number;
  relStepSize?: number;
  stepSize?: number;
  restarts?: number;
  loss?: 'ce' | 'margin' | 'dlr';
  momentum?: number;
  earlyStop?: boolean;
  squareQueries?: number;
  targeted?: TargetMode;
}

/**
 * Adds the attack flags to a command: every one in ATTACK_FLAGS, `--targeted` only where a
 * command writes targeted examples (`advkit attack`; the evaluator measures untargeted robust
 * accuracy, its targeted searches are apgd-t and fab-t).
 */
export function withAttackFlags(cmd: Command, o: { targeted: boolean }): Command {
  cmd
    .option('--steps <n>', `gradient steps ${flagTakers('--steps')}`, intOption(1, 100_000))
    .option('--rel-step-size <f>', `step size as a fraction of eps ${flagTakers('--rel-step-size')}`, floatOption(0, { exclusive: true }))
    .option('--step-size <a>', `absolute step size in pixel units ${flagTakers('--step-size')}`, floatOption(0, { exclusive: true }))
    .option('--restarts <n>', `restarts ${flagTakers('--restarts')}`, intOption(1, 1000))
    .addOption(new Option('--loss <loss>', `objective, default ce ${flagTakers('--loss')}`).choices(['ce', 'margin', 'dlr']))
    .option('--momentum <mu>', `momentum decay ${flagTakers('--momentum')}`, floatOption(0))
    .option('--early-stop', `samples already fooled stop moving ${flagTakers('--early-stop')}`)
    .option('--square-queries <n>', `queries per example ${flagTakers('--square-queries')}`, intOption(1, 1_000_000));
  if (o.targeted) cmd.option('--targeted <mode>', `targeted attack: random, least-likely or a class index ${flagTakers('--targeted')}`, targetOption);
  return cmd;
}

/** The shared flags given, with their values (the attack command's --targeted included). */
export function givenAttackFlags(o: AttackFlagValues): Array<[AttackFlag, unknown]> {
  const given: Array<[AttackFlag, unknown]> = [['--steps', o.steps], ['--rel-step-size', o.relStepSize], ['--step-size', o.stepSize], ['--restarts', o.restarts], ['--loss', o.loss], ['--momentum', o.momentum], ['--early-stop', o.earlyStop], ['--square-queries', o.squareQueries], ['--targeted', o.targeted]];
  return given.filter(([, v]) => v !== undefined);
}

/** "(bim, pgd, ...)" for a flag's help text. */
export function flagTakers(flag: AttackFlag): string {
  return `(${attacksTaking(ATTACK_FLAGS[flag]).join(', ')})`;
}

/** The attack's options from the CLI's: the flags given, each attack's own defaults elsewhere. */
export function attackOptions(o: AttackCliOptions): GradientAttackOptions {
  const opts: Record<string, unknown> = { eps: o.eps, norm: o.norm, seed: o.seed };
  if (takesOption(o.attack, 'loss')) opts.loss = o.loss ?? 'ce';
  for (const [flag, v] of givenAttackFlags(o)) if (flag !== '--targeted') opts[ATTACK_FLAGS[flag]] = v;
  return opts as unknown as GradientAttackOptions;
}

/** Refuses a flag the attack does not read (it would be ignored), naming the attacks that do. */
export function checkCompatible(o: AttackCliOptions): void {
  const bad = (flag: string, why: string) => new AdvkitError('E_USAGE', `Error in ${flag}: ${why}`, 2);
  for (const [flag] of givenAttackFlags(o)) {
    const why = optionRefusal(o.attack, ATTACK_FLAGS[flag], flag);
    if (why) throw bad(flag, why);
  }
  if (o.relStepSize !== undefined && o.stepSize !== undefined) throw bad('--step-size', 'give either --rel-step-size or --step-size, not both.');
  const noNorm = normRefusal(o.attack, o.norm);
  if (noNorm) throw bad('--norm', noNorm);
}
