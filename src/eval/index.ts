export * from './report.js';
export { evaluateRobustness, resolveAttacks, EVALUATE_DEFAULTS, type AttackSpec, type EvaluateOptions, type Evaluation, type KeptExample } from './evaluate.js';
export { runChecks } from './checks.js';
export { parseAssertion, checkAssertions, checkBaseline, junitXml, type Assertion, type GateResult } from './gate.js';
export { renderTable, renderMarkdown, renderHtml, renderChartSvg, chartSpec, examplesGridPng } from './render.js';
export { PRESETS, PRESET_NAMES, presetAttacks, completeness, type PresetName } from './presets.js';
export { minimumNormCurve } from './render.js';
export { mergeReports, type MergeReportsOptions } from './merge.js';
export { summarizeRecords } from './evaluate.js';
