import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkShards, parseShard, resolveShard, shardRange } from '../../src/util/shard.js';

describe('shards', () => {
  it('the N blocks are disjoint, in order and cover every example', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1, max: 64 }), (n, count) => {
      let next = 0;
      for (let index = 0; index < count; index++) {
        const { start, end } = shardRange(n, { index, count });
        expect(start).toBe(next);
        expect(end).toBeGreaterThanOrEqual(start);
        expect(end - start).toBeLessThanOrEqual(Math.ceil(n / count));
        next = end;
      }
      expect(next).toBe(n);
    }));
  });

  it('parses i/N and refuses indices outside 0..N-1 and malformed specs', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    expect(() => parseShard('5/5')).toThrow(/shard index "5" must be an integer in 0..4/);
    expect(() => parseShard('-1/5')).toThrow(/must be an integer in 0..4/);
    expect(() => parseShard('1/0')).toThrow(/shard count "0" must be an integer from 1/);
    expect(() => parseShard('1')).toThrow(/must be i\/N/);
    expect(() => parseShard('a/b')).toThrow(/shard count "b"/);
  });

  it('takes the index from the batch engine with --shard-count: ADVKIT_SHARD, then JOB_COMPLETION_INDEX, then SLURM_ARRAY_TASK_ID', () => {
    expect(resolveShard(undefined, 4, { JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 3, count: 4 });
    expect(resolveShard(undefined, 4, { SLURM_ARRAY_TASK_ID: '1' })).toEqual({ index: 1, count: 4 });
    expect(resolveShard(undefined, 4, { ADVKIT_SHARD: '0', JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 0, count: 4 });
    expect(resolveShard(undefined, undefined, { ADVKIT_SHARD: '1/2' })).toEqual({ index: 1, count: 2 });
    expect(resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '3' })).toBeUndefined();
    expect(resolveShard('1/3', undefined, {})).toEqual({ index: 1, count: 3 });
    expect(() => resolveShard(undefined, 4, {})).toThrow(/none of ADVKIT_SHARD, JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID is set/);
    expect(() => resolveShard(undefined, 4, { SLURM_ARRAY_TASK_ID: '4' })).toThrow(/Error in SLURM_ARRAY_TASK_ID: shard index "4"/);
    expect(() => resolveShard('1/3', 3, {})).toThrow(/not both/);
  });

  it('a merge needs every shard once, finished, of one run', () => {
    const item = (dir: string, index: number, count = 3, identity = 'a', complete = true) => ({ dir, shard: { index, count }, complete, identity, schema: 's' });
    expect(checkShards([item('c', 2), item('a', 0), item('b', 1)], 's', 'set').map((s) => s.dir)).toEqual(['a', 'b', 'c']);
    expect(() => checkShards([item('a', 0), item('c', 2)], 's', 'set')).toThrow(/shard\(s\) 1\/3 missing/);
    expect(() => checkShards([item('a', 0), item('b', 0), item('c', 2)], 's', 'set')).toThrow(/shard 0\/3 is given twice \(a and b\)/);
    expect(() => checkShards([item('a', 0), item('b', 1, 3, 'other'), item('c', 2)], 's', 'set')).toThrow(/b comes from a different run than a/);
    expect(() => checkShards([item('a', 0), item('b', 1, 4)], 's', 'set')).toThrow(/b is shard 1\/4 but a is of 3 shards/);
    expect(() => checkShards([item('a', 0), item('b', 1, 3, 'a', false), item('c', 2)], 's', 'set')).toThrow(/shard 1\/3 in b is unfinished/);
    expect(() => checkShards([{ ...item('a', 0), shard: undefined }], 's', 'set')).toThrow(/a is not a shard/);
    expect(() => checkShards([{ ...item('a', 0), schema: 'x' }], 's', 'set')).toThrow(/a is not an advkit set/);
  });
});
