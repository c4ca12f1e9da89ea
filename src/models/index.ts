export * from './classifier.js';
export * from './architectures.js';
export * from './io.js';
export * from './train.js';
export { trainingStep, trainableVariables, shardGradients, shardRanges, type TrainingStepOptions, type ShardSpec, type ShardResult } from './train_step.js';
export { TrainPool } from './train_pool.js';
export { compiledForward, forward } from './compiled.js';
export { compileModel, type CompiledModel, type CompileReport, type CompiledNode, type CompileOptions } from './compiler/index.js';
