export * from './classifier.js';
export * from './architectures.js';
export * from './io.js';
export * from './train.js';
