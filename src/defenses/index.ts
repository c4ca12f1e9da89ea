export * from './preprocess.js';
export * from './adversarial_training.js';
export * from './smoothing.js';
export * from './detector.js';
export * from './train.js';
export { trainingStep, trainableVariables, shardGradients, shardRanges, type TrainingStepOptions, type ShardSpec, type ShardResult } from './train_step.js';
export { TrainPool } from './train_pool.js';
