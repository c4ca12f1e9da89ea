export * from './preprocess.js';
export * from './adversarial_training.js';
