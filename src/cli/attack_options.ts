/** `advkit attack`'s options: parsers for --targeted and --format, the attack's options from the flags, flag compatibility. */
import { InvalidArgumentError as CommanderArgError } from 'commander';
import type { GradientAttackOptions } from '../attacks/index.js';
import { GOAL_ATTACKS, GRADIENT_ATTACKS } from '../attacks/registry.js';
import type { TargetMode } from '../attacks/dataset.js';
import { AdvkitError } from '../util/errors.js';

type AttackName = (typeof GRADIENT_ATTACKS)[number];

export interface AttackCliOptions {
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
  loss: 'ce' | 'margin' | 'dlr';
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

/** The attack's options from the CLI's, with each attack's own defaults where a flag is absent. */
export function attackOptions(o: Pick<AttackCliOptions, 'eps' | 'norm' | 'steps' | 'relStepSize' | 'stepSize' | 'restarts' | 'loss' | 'momentum' | 'earlyStop' | 'seed'>): GradientAttackOptions {
  const opts: GradientAttackOptions = { eps: o.eps, norm: o.norm, loss: o.loss, seed: o.seed };
  if (o.steps !== undefined) opts.steps = o.steps;
  if (o.relStepSize !== undefined) opts.relStepSize = o.relStepSize;
  if (o.stepSize !== undefined) opts.absStepSize = o.stepSize;
  if (o.restarts !== undefined) opts.restarts = o.restarts;
  if (o.momentum !== undefined) opts.momentum = o.momentum;
  if (o.earlyStop) opts.earlyStop = true;
  return opts;
}

export function checkCompatible(o: AttackCliOptions): void {
  const bad = (flag: string, why: string) => new AdvkitError('E_USAGE', `Error in ${flag}: ${why}`, 2);
  if (o.attack === 'fgsm' && (o.steps !== undefined || o.relStepSize !== undefined || o.stepSize !== undefined)) throw bad('--steps', 'fgsm takes one full step of size eps; drop --steps/--rel-step-size/--step-size or use bim/pgd.');
  const own = o.attack.startsWith('apgd') || o.attack === 'fab-t';
  if (o.restarts !== undefined && o.attack !== 'pgd' && !own) throw bad('--restarts', `only pgd, apgd-* and fab-t have restarts, not ${o.attack}.`);
  if (own && (o.relStepSize !== undefined || o.stepSize !== undefined)) throw bad('--step-size', `${o.attack} sets its own step sizes; drop --rel-step-size/--step-size.`);
  if (o.targeted !== undefined && !GOAL_ATTACKS.includes(o.attack)) throw bad('--targeted', `${o.attack} picks its own target classes; use one of ${GOAL_ATTACKS.join(', ')} for a targeted attack.`);
  if (o.momentum !== undefined && o.attack !== 'mifgsm') throw bad('--momentum', `only mifgsm uses momentum, not ${o.attack}.`);
  if (o.relStepSize !== undefined && o.stepSize !== undefined) throw bad('--step-size', 'give either --rel-step-size or --step-size, not both.');
}

