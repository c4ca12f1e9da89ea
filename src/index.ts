/**
 * advkit's public API, listed by name. What is not here is internal and may change without
 * notice; tests/public_api.test.ts pins this list, so a change to it is a visible decision.
 */

// Attacks: functions (model, x, y, options) => Promise<AttackResult>, each with frozen defaults.
export { fgsm, FGSM_DEFAULTS, type FgsmOptions } from './attacks/fgsm.js';
export { bim, BIM_DEFAULTS, type BimOptions } from './attacks/bim.js';
export { pgd, PGD_DEFAULTS, type PgdOptions } from './attacks/pgd.js';
export { mifgsm, MIFGSM_DEFAULTS, type MifgsmOptions } from './attacks/mifgsm.js';
export { apgd, apgdT, APGD_DEFAULTS, APGDT_DEFAULTS, type ApgdOptions, type ApgdTOptions } from './attacks/apgd.js';
export { fabT, FAB_DEFAULTS, type FabOptions } from './attacks/fab.js';
export { deepfool, DEEPFOOL_DEFAULTS, type DeepFoolOptions } from './attacks/deepfool.js';
export { cw, CW_DEFAULTS, type CwOptions } from './attacks/cw.js';
export { ead, EAD_DEFAULTS, type EadOptions } from './attacks/ead.js';
export { fmn, FMN_DEFAULTS, type FmnOptions } from './attacks/fmn.js';
export { square, SQUARE_DEFAULTS, type SquareOptions } from './attacks/square.js';
export { ATTACKS, ATTACK_NAMES, ATTACK_REGISTRY, type AttackName, type AnyAttackFn, type AttackEntry } from './attacks/registry.js';
export type { Attack, AttackResult, GradientAttackOptions } from './attacks/gradient_descent.js';
// Goals, targets, losses, norms.
export { UNTARGETED, targeted, randomTargets, leastLikelyTargets, fixedTargets, rankedWrongClasses, type Goal, type Labels } from './attacks/targets.js';
export { objective, LOSSES, type LossName } from './attacks/losses.js';
export { inputGradient, type InputGradientOptions } from './attacks/input_gradient.js';
export { linf, l2, l1, type Distances, type Norm, type NormName } from './attacks/lp.js';
// Over many examples: sweeps, data sets, worker threads, example sets on disk.
export { sweep, type SweepResult } from './attacks/sweep.js';
export { attackDataset, predictDataset, type DatasetAttackOptions, type DatasetAttackBatch, type TargetMode } from './attacks/dataset.js';
export { AttackPool } from './attacks/pool.js';
export { writeExampleSet, readExampleSet, mergeExampleSets, EXAMPLE_SET_SCHEMA, type ExampleSet, type ExampleSetSummary, type ManifestLine, type Provenance, type WriteExampleSetOptions } from './attacks/example_set.js';

// Defenses: preprocessing with BPDA/EOT, detection, randomized smoothing, (adversarial) training.
export { defend, bitDepth, medianSmoothing, jpeg, tvMinimization, gaussianNoise, withGradient, applyPreprocessors, type Preprocessor, type PreprocessorSpec } from './defenses/preprocess.js';
export { featureSqueezing, type DetectionReport } from './defenses/detector.js';
export { certify, smoothedPredict, ABSTAIN, type Certificate } from './defenses/smoothing.js';
export { trainClassifier, accuracy, TRAIN_DEFAULTS, type TrainOptions, type TrainResult, type EpochRecord } from './defenses/train.js';
export { trainingStep, type TrainingStepOptions } from './defenses/train_step.js';
export { TrainPool } from './defenses/train_pool.js';
export type { AdversarialTraining } from './defenses/adversarial_training.js';

// Evaluation: the evaluator, presets, merging shards, renderers, CI gates, the report schema.
export { evaluateRobustness, EVALUATE_DEFAULTS, type AttackSpec, type EvaluateOptions, type Evaluation, type KeptExample } from './eval/evaluate.js';
export { PRESETS, PRESET_NAMES, type PresetName } from './eval/presets.js';
export { mergeReports, type MergeReportsOptions } from './eval/merge.js';
export { renderTable, renderMarkdown, renderHtml, renderChartSvg, examplesGridPng, minimumNormCurve } from './eval/render.js';
export { parseAssertion, checkAssertions, checkBaseline, junitXml, type Assertion, type GateResult } from './eval/gate.js';
export { REPORT_JSON_SCHEMA, REPORT_SCHEMA_ID, type RobustnessReport, type SanityCheck, type EpsilonResult, type AttackOutcome } from './eval/report.js';

// Models.
export { fromFunction, fromLayersModel, fromGraphModel, fromOnnx, IMAGENET_NORMALIZATION, type Classifier, type ClassifierOptions, type ClassifierSource, type Bounds, type Normalization, type Preprocessing } from './models/classifier.js';
export { loadClassifier, saveLayersModel, modelDigest, type ModelDigest, type ModelMetadata } from './models/io.js';
export { buildArchitecture, ARCHITECTURES } from './models/architectures.js';
export { compileModel, type CompiledModel, type CompileReport, type Head } from './models/compiler/index.js';

// Data.
export { makeDataset, take, slice, subset, split, shuffle, batches, size, datasetDigest, type Dataset } from './data/dataset.js';
export { loadDataset, parseDataSpec, loadMnist, readNpy, resizeDataset, type ResizeSpec } from './data/index.js';

// Backends, shards, errors, version.
export { initBackend, backendStatus, backendInfo, type BackendStatus } from './backend/index.js';
export { defaultWorkers } from './backend/pool.js';
export { parseShard, resolveShard, shardRange, type Shard } from './util/shard.js';
export { AdvkitError, InvalidArgumentError, DataError, ModelError, BackendError } from './util/errors.js';
export { ADVKIT_VERSION } from './util/version.js';
export { attest, verifyAttestation, cycloneDxBom, ATTESTATION_FILE, ROBUSTNESS_PREDICATE, type Statement, type Envelope, type Verification } from './eval/attest.js';
