/** advkit's public API. */
export * from './backend/index.js';
export { ThreadPool, defaultWorkers } from './backend/pool.js';
export { AttackPool } from './attacks/pool.js';
export * from './models/index.js';
export * from './data/index.js';
export * from './attacks/index.js';
export * from './eval/index.js';
export * from './defenses/index.js';
export * from './util/errors.js';
export { Rng, deriveSeed, permutation } from './util/random.js';
export { ADVKIT_VERSION } from './util/version.js';
export { parseShard, resolveShard, shardRange, type Shard } from './util/shard.js';
