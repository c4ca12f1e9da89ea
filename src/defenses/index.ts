export * from './preprocess.js';
export * from './adversarial_training.js';
export * from './smoothing.js';
export * from './detector.js';
