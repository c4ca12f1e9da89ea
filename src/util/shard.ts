/**
 * Shards: a run split across machines by an existing batch engine. Shard i of N (0-based) takes
 * the contiguous block of examples [floor(i·n/N), floor((i+1)·n/N)) of the run's data, ids kept,
 * so the N shards are disjoint, cover the set, and each example keeps the seed it has in one
 * unsharded run. The index comes from `--shard i/N`, or from the engine's own variable
 * (ADVKIT_SHARD, JOB_COMPLETION_INDEX of a Kubernetes Indexed Job, SLURM_ARRAY_TASK_ID)
 * with `--shard-count N`.
 */
import { InvalidArgumentError } from './errors.js';

export interface Shard {
  index: number;
  count: number;
}

/** Environment variables read (in this order) for the shard index when --shard is absent. */
export const SHARD_INDEX_VARIABLES = ['ADVKIT_SHARD', 'JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID'] as const;

function parseIndex(text: string, count: number, where: string): number {
  const i = Number(text);
  if (text.trim() === '' || !Number.isInteger(i) || i < 0 || i >= count) {
    throw new InvalidArgumentError(`Error in ${where}: shard index ${JSON.stringify(text)} must be an integer in 0..${count - 1} (shards count from 0; a Slurm array runs --array=0-${count - 1}).`);
  }
  return i;
}

function parseCount(text: string, where: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError(`Error in ${where}: shard count ${JSON.stringify(text)} must be an integer from 1 to 100000.`);
  return n;
}

/** Parses "i/N" as given to --shard. */
export function parseShard(text: string, flag = '--shard'): Shard {
  const m = /^\s*([^/]*)\/([^/]*)\s*$/.exec(text);
  if (!m) throw new InvalidArgumentError(`Error in ${flag}: ${JSON.stringify(text)} must be i/N, e.g. 0/4 for the first of four shards.`);
  const count = parseCount(m[2]!, flag);
  return { index: parseIndex(m[1]!, count, flag), count };
}

/**
 * The run's shard from `--shard` or, with `--shard-count`, from the environment; undefined for
 * an unsharded run. ADVKIT_SHARD may also hold "i/N" on its own.
 */
export function resolveShard(flag: string | undefined, count: number | undefined, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (flag !== undefined) {
    if (count !== undefined) throw new InvalidArgumentError(`Error in --shard-count: give --shard ${flag} or --shard-count ${count} with an index variable, not both.`);
    return parseShard(flag);
  }
  const advkitShard = env.ADVKIT_SHARD;
  if (count === undefined) {
    if (advkitShard !== undefined && advkitShard.includes('/')) return parseShard(advkitShard, 'ADVKIT_SHARD');
    return undefined;
  }
  const name = SHARD_INDEX_VARIABLES.find((v) => env[v] !== undefined && env[v] !== '');
  if (!name) throw new InvalidArgumentError(`Error in --shard-count: ${count} shards, but none of ${SHARD_INDEX_VARIABLES.join(', ')} is set to say which one this is; set one or give --shard i/${count}.`);
  return { index: parseIndex(env[name]!, count, name), count };
}

/** The block [start, end) of n examples that a shard takes. */
export function shardRange(n: number, shard: Shard | undefined): { start: number; end: number } {
  if (!shard) return { start: 0, end: n };
  return { start: Math.floor((shard.index * n) / shard.count), end: Math.floor(((shard.index + 1) * n) / shard.count) };
}

export function shardName(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/**
 * Checks that `items` are the complete, finished shards of one run and returns them in shard
 * order. Messages name the directory and the problem.
 */
export function checkShards<T extends { dir: string; shard?: Shard; complete: boolean; identity: string; schema: unknown }>(items: T[], schema: string, kind: string): T[] {
  const fn = 'merge';
  if (items.length === 0) throw new InvalidArgumentError(`Error in ${fn}: give the shard directories to merge.`);
  for (const it of items) {
    if (it.schema !== schema) throw new InvalidArgumentError(`Error in ${fn}: ${it.dir} is not an advkit ${kind} (schema ${JSON.stringify(it.schema) ?? 'none'}).`);
    if (!it.shard) throw new InvalidArgumentError(`Error in ${fn}: ${it.dir} is not a shard (it was written without --shard); nothing to merge.`);
    if (!it.complete) throw new InvalidArgumentError(`Error in ${fn}: shard ${shardName(it.shard)} in ${it.dir} is unfinished; run it again to complete it, then merge.`);
  }
  const count = items[0]!.shard!.count;
  const byIndex = new Map<number, T>();
  for (const it of items) {
    if (it.shard!.count !== count) throw new InvalidArgumentError(`Error in ${fn}: ${it.dir} is shard ${shardName(it.shard!)} but ${items[0]!.dir} is of ${count} shards; merge shards of one run.`);
    const dup = byIndex.get(it.shard!.index);
    if (dup) throw new InvalidArgumentError(`Error in ${fn}: shard ${shardName(it.shard!)} is given twice (${dup.dir} and ${it.dir}).`);
    if (it.identity !== items[0]!.identity) throw new InvalidArgumentError(`Error in ${fn}: ${it.dir} comes from a different run than ${items[0]!.dir} (its attack options, model or data differ); merge shards of one run.`);
    byIndex.set(it.shard!.index, it);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length) throw new InvalidArgumentError(`Error in ${fn}: shard(s) ${missing.map((i) => `${i}/${count}`).join(', ')} missing; give all ${count} shard directories.`);
  return Array.from({ length: count }, (_, i) => byIndex.get(i)!);
}

