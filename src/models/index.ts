export * from './classifier.js';
export * from './architectures.js';
export * from './io.js';
export { compiledForward, forward } from './compiled.js';
export { compileModel, type CompiledModel, type CompileReport, type CompiledNode, type CompileOptions } from './compiler/index.js';
