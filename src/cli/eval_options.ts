/** `advkit eval`'s options: the --config file, the epsilon and attack lists, flags applied to a preset's attacks. */
import { promises as fsp } from 'node:fs';
import { ATTACK_NAMES, attacksTaking, takesOption, type AttackName } from '../attacks/registry.js';
import { ATTACK_FLAGS, givenAttackFlags, type AttackFlagValues } from './attack_options.js';
import { numberOrFraction } from './common.js';
import type { AttackSpec } from '../eval/evaluate.js';
import type { PresetName } from '../eval/presets.js';
import { InvalidArgumentError } from '../util/errors.js';
import type { ResizeSpec } from '../data/index.js';
import type { Bounds, Normalization } from '../models/classifier.js';
import type { NormName } from '../util/norms.js';

export interface EvalCliOptions extends AttackFlagValues {
  model?: string;
  data?: string;
  attacks?: string;
  preset?: PresetName;
  eps?: string;
  norm?: NormName;
  seed?: number;
  limit?: number;
  batchSize?: number;
  cascade?: boolean;
  checks?: boolean;
  checksLimit?: number;
  out?: string;
  assert: string[];
  baseline?: string;
  maxDrop: number;
  junit?: string;
  config?: string;
  workers?: number;
  defense?: string;
  defenseGradient?: 'auto' | 'exact' | 'bpda';
  eot?: number;
  dataDir?: string;
  backend?: string;
  json?: boolean;
  shard?: string;
  shardCount?: number;
  expectModelSha256?: string;
  allowLargeEps?: boolean;
  attest?: string;
  bom?: string;
  head?: string;
  normalize?: Normalization;
  inputRange?: Bounds;
  resize?: ResizeSpec;
}

/** Keys a --config file may hold (the long option names in camelCase). */
const CONFIG_KEYS = ['allowLargeEps', 'relStepSize', 'stepSize', 'momentum', 'earlyStop', 'head', 'normalize', 'inputRange', 'resize', 'defense', 'defenseGradient', 'eot', 'model', 'data', 'attacks', 'preset', 'eps', 'norm', 'steps', 'restarts', 'loss', 'squareQueries', 'seed', 'limit', 'batchSize', 'cascade', 'checks', 'checksLimit', 'out', 'assert', 'baseline', 'maxDrop', 'junit', 'dataDir'] as const;

/** The JSON type each --config key must have. */
const CONFIG_TYPES: Record<(typeof CONFIG_KEYS)[number], 'string' | 'integer' | 'number' | 'boolean' | 'string[]'> = {
  allowLargeEps: 'boolean', relStepSize: 'number', stepSize: 'number', momentum: 'number', earlyStop: 'boolean', head: 'string', normalize: 'string', inputRange: 'string', resize: 'string', defense: 'string', defenseGradient: 'string', eot: 'integer', model: 'string', data: 'string', attacks: 'string', preset: 'string', eps: 'string', norm: 'string',
  steps: 'integer', restarts: 'integer', loss: 'string', squareQueries: 'integer', seed: 'integer', limit: 'integer', batchSize: 'integer', cascade: 'boolean', checks: 'boolean',
  checksLimit: 'integer', out: 'string', assert: 'string[]', baseline: 'string', maxDrop: 'number', junit: 'string', dataDir: 'string',
};

export async function readConfig(file: string): Promise<Partial<EvalCliOptions>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`Error in --config: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`Error in --config: ${file} is not valid JSON (${(err as Error).message}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InvalidArgumentError(`Error in --config: ${file} must hold a JSON object of options, e.g. {"model": "m", "eps": [0.1, 0.3]}, not ${JSON.stringify(json)?.slice(0, 40)}.`);
  const unknown = Object.keys(json).filter((k) => !(CONFIG_KEYS as readonly string[]).includes(k));
  if (unknown.length) throw new InvalidArgumentError(`Error in --config: ${file} has unknown key(s) ${unknown.join(', ')}; allowed: ${CONFIG_KEYS.join(', ')}.`);
  const out = { ...json } as Record<string, unknown>;
  // Lists may be arrays in JSON.
  for (const k of ['attacks', 'eps'] as const) if (Array.isArray(out[k])) out[k] = (out[k] as unknown[]).join(',');
  if (typeof out.eps === 'number') out.eps = String(out.eps);
  if (typeof out.assert === 'string') out.assert = [out.assert];
  for (const [k, v] of Object.entries(out)) {
    const want = CONFIG_TYPES[k as keyof typeof CONFIG_TYPES];
    const ok = want === 'integer' ? Number.isInteger(v) : want === 'number' ? typeof v === 'number' && Number.isFinite(v) : want === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof v === want;
    if (!ok) throw new InvalidArgumentError(`Error in --config: "${k}" in ${file} must be ${want === 'string[]' ? 'a list of strings' : `a ${want}`}, got ${JSON.stringify(v)}.`);
  }
  return out as Partial<EvalCliOptions>;
}

export function parseEpsilons(text: string): number[] {
  const vals = text.split(',').map((s) => s.trim()).filter(Boolean).map(numberOrFraction);
  if (!vals.length || vals.some((v) => !Number.isFinite(v) || v < 0)) throw new InvalidArgumentError(`Error in --eps: ${JSON.stringify(text)} must be a comma list of numbers >= 0 or fractions, e.g. 0,0.1,0.2,0.3 or 0,4/255,8/255.`);
  return vals;
}

/**
 * Applies the attack flags (--steps, --step-size, --loss, ...) to the attacks that read them (the
 * registry says which); a flag none of the run's attacks reads is refused rather than ignored.
 */
export function withFlags(specs: AttackSpec[], o: EvalCliOptions): AttackSpec[] {
  const given = givenAttackFlags(o);
  for (const [flag] of given) {
    if (!specs.some((s) => takesOption(s.name, ATTACK_FLAGS[flag]))) throw new InvalidArgumentError(`Error in ${flag}: none of this run's attacks (${specs.map((s) => s.name).join(', ')}) reads it; the attacks that do: ${attacksTaking(ATTACK_FLAGS[flag]).join(', ')}.`);
  }
  return specs.map(({ name, options: given0 }) => {
    const options: Record<string, unknown> = { ...(given0 ?? {}) };
    for (const [flag, v] of given) if (takesOption(name, ATTACK_FLAGS[flag])) options[ATTACK_FLAGS[flag]] = v;
    return { name, options };
  });
}

export function parseAttacks(text: string): AttackSpec[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.find((n) => !(ATTACK_NAMES as string[]).includes(n));
  if (bad !== undefined || names.length === 0) throw new InvalidArgumentError(`Error in --attacks: unknown attack ${JSON.stringify(bad ?? text)}; use a comma list of ${ATTACK_NAMES.join(', ')}.`);
  return names.map((name) => ({ name: name as AttackName, options: {} }));
}

