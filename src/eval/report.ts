/**
 * The robustness report: plain, JSON-serializable data with a versioned schema
 * (`advkit.robustness-report`, version 1). Renderers turn it into text, Markdown and HTML;
 * gates read it. Fractions are in [0, 1]; norms in pixel units.
 */
import { NORM_NAMES, type NormName } from '../util/norms.js';

export const REPORT_SCHEMA_ID = 'advkit.robustness-report';
export const REPORT_VERSION = 1;

export interface Stats {
  mean: number | null;
  median: number | null;
  max: number | null;
}

export interface AttackOutcome {
  /** Attack name as configured (fgsm, bim, pgd, mifgsm, square). */
  attack: string;
  /** Points this attack was run on (cascade: those still robust). */
  attacked: number;
  /** Points this attack broke. */
  successes: number;
  /** successes / attacked (null when nothing was attacked). */
  successRate: number | null;
  /**
   * Robust accuracy against this attack alone, over all examples; known when the attack ran
   * on every clean-correct point (the first attack of a cascade, or cascade off), else null.
   */
  robustAccuracy: number | null;
  /** Robust accuracy after this attack and all before it in the cascade. */
  robustAccuracyAfter: number;
  /** Perturbations of the examples this attack broke. */
  /** L1 and L0 are absent in reports written before advkit measured them. */
  perturbation: { linf: Stats; l2: Stats; l1?: Stats; l0?: Stats };
  seconds: number;
}

export interface EpsilonResult {
  eps: number;
  attacks: AttackOutcome[];
  /** The per-example worst case over all attacks. */
  worstCase: {
    robustAccuracy: number;
    perClass: Array<{ label: number; name: string; examples: number; robustAccuracy: number | null }>;
  };
}

export interface SanityCheck {
  id: string;
  status: 'pass' | 'warn';
  /** What was measured. */
  message: string;
  /** What to do about a warning. */
  suggestion?: string;
  details?: Record<string, number | string | boolean | null>;
}

export interface RobustnessReport {
  schema: typeof REPORT_SCHEMA_ID;
  version: typeof REPORT_VERSION;
  createdBy: { advkit: string; tfjs: string; backend: string; node: string };
  model: { name: string; numClasses: number; inputShape: number[]; bounds: [number, number]; randomized: boolean; warnings: string[]; /** Preprocessing defense and how its gradients are taken (BPDA, EOT). */ defense?: string;
    /** How the attacked logits relate to the model's output (softmax cut, sigmoid made two logits, ...). */
    output?: { kind: 'logits' | 'softmax-cut' | 'sigmoid-binary' | 'log-probabilities'; detail: string; /** The output attacked in a model with several. */ head?: string };
    /** Input preprocessing inside the classifier: pixel bounds mapped onto inputRange, then (x - mean) / std. */
    preprocessing?: { inputRange?: [number, number]; normalization?: { mean: number[]; std: number[] } } };
  data: { name: string; examples: number; classNames: string[] };
  config: {
    /** The preset the attacks came from (null: a list given by hand). */
    preset?: string | null;
    attacks: Array<{ name: string; options: Record<string, unknown> }>;
    epsilons: number[];
    norm: NormName;
    seed: number;
    batchSize: number;
    cascade: boolean;
    checks: boolean;
  };
  threatModel: {
    description: string;
    knowledge: 'white-box';
    norm: NormName;
    epsilons: number[];
    targeted: false;
    catalogue: Array<{ source: string; id: string; name: string }>;
  };
  cleanAccuracy: number;
  /**
   * Whether the figure comes from a complete evaluation (the standard preset, or rand for a
   * randomized model) or a partial one, which may overstate robustness.
   */
  evaluation?: { preset: string | null; complete: boolean; note: string };
  results: EpsilonResult[];
  /**
   * From a minimum-norm attack (FAB-T): each example's smallest adversarial distance found by
   * any attack of the run, in the threat model's norm (0 for clean errors, null when none was
   * found). Robust accuracy at any eps is the fraction with distance > eps. `foundBy` names,
   * per example, the attack whose example gave that distance (null for clean errors and where
   * none was found; absent in reports written before it was recorded).
   */
  minimumNorm?: { norm: NormName; attacks: string[]; median: number | null; found: number; distances: Array<number | null>; foundBy?: Array<string | null> };
  checks: SanityCheck[];
  timing: { seconds: number; examplesPerSecond: number };
  /**
   * What the figures were computed on: the SHA-256 of the model files (model.json followed by
   * its weight files; null for a model built in code) and of the examples (ids, labels, pixels).
   */
  provenance?: { model: { sha256: string; files: Record<string, string> } | null; data: { name: string; examples: number; sha256: string } };
  /**
   * Present only in a shard's report: which block of the data it evaluated and its per-example
   * records, from which `mergeReports` rebuilds exactly the unsharded report.
   */
  shard?: ShardRecords;
}

/** One attack at one eps: the examples it broke and their distances (l1 and l0 absent in older shards). */
export interface OutcomeRecord { broken: number[]; linf: Array<number | null>; l2: Array<number | null>; l1?: Array<number | null>; l0?: Array<number | null>; seconds: number }

/** Per-example results of one block of the data (indices relative to the block). */
export interface EvaluationRecords {
  /** True label and clean prediction per example. */
  labels: number[];
  predictions: number[];
  /** Per eps (sorted) and attack (in order): the examples it broke, their norms, its time. */
  outcomes: Array<Array<OutcomeRecord>>;
  /** Smallest adversarial distance found per example (0: clean error; null: none found). */
  distance: Array<number | null>;
  /** The attack that found each example's distance (null: clean error or none found; absent in older shards). */
  foundBy?: Array<string | null>;
}

export interface ShardRecords extends EvaluationRecords {
  index: number;
  count: number;
  start: number;
  end: number;
  /** Settings of the sanity checks, which the merge runs. */
  checkOptions: { checksLimit: number; squareQueries: number };
  /** What the merge step needs to run the sanity checks once, on the whole set. */
  source?: Record<string, unknown>;
}

/** JSON Schema (draft 2020-12) of the report. */
export const REPORT_JSON_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://advkit.dev/schemas/robustness-report-1.json',
  title: 'advkit robustness report, version 1',
  type: 'object',
  required: ['schema', 'version', 'createdBy', 'model', 'data', 'config', 'threatModel', 'cleanAccuracy', 'results', 'checks', 'timing'],
  additionalProperties: false,
  $defs: {
    fraction: { type: 'number', minimum: 0, maximum: 1 },
    stats: {
      type: 'object', required: ['mean', 'median', 'max'], additionalProperties: false,
      properties: { mean: { type: ['number', 'null'] }, median: { type: ['number', 'null'] }, max: { type: ['number', 'null'] } },
    },
  },
  properties: {
    schema: { const: REPORT_SCHEMA_ID },
    version: { const: REPORT_VERSION },
    createdBy: {
      type: 'object', required: ['advkit', 'tfjs', 'backend', 'node'],
      properties: { advkit: { type: 'string' }, tfjs: { type: 'string' }, backend: { type: 'string' }, node: { type: 'string' } },
    },
    model: {
      type: 'object', required: ['name', 'numClasses', 'inputShape', 'bounds', 'randomized', 'warnings'],
      properties: {
        name: { type: 'string' }, numClasses: { type: 'integer', minimum: 2 },
        inputShape: { type: 'array', items: { type: 'integer' }, minItems: 3, maxItems: 3 },
        bounds: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
        randomized: { type: 'boolean' }, warnings: { type: 'array', items: { type: 'string' } }, defense: { type: 'string' },
        output: {
          type: 'object', required: ['kind', 'detail'],
          properties: { kind: { enum: ['logits', 'softmax-cut', 'sigmoid-binary', 'log-probabilities'] }, detail: { type: 'string' }, head: { type: 'string' } },
        },
        preprocessing: {
          type: 'object', additionalProperties: false,
          properties: {
            inputRange: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
            normalization: {
              type: 'object', required: ['mean', 'std'], additionalProperties: false,
              properties: { mean: { type: 'array', items: { type: 'number' } }, std: { type: 'array', items: { type: 'number' } } },
            },
          },
        },
      },
    },
    data: {
      type: 'object', required: ['name', 'examples', 'classNames'],
      properties: { name: { type: 'string' }, examples: { type: 'integer', minimum: 0 }, classNames: { type: 'array', items: { type: 'string' } } },
    },
    config: {
      type: 'object', required: ['attacks', 'epsilons', 'norm', 'seed', 'batchSize', 'cascade', 'checks'],
      properties: {
        preset: { type: ['string', 'null'] },
        attacks: { type: 'array', minItems: 1, items: { type: 'object', required: ['name', 'options'], properties: { name: { type: 'string' }, options: { type: 'object' } } } },
        epsilons: { type: 'array', minItems: 1, items: { type: 'number', minimum: 0 } },
        norm: { enum: NORM_NAMES }, seed: { type: 'integer' }, batchSize: { type: 'integer', minimum: 1 },
        cascade: { type: 'boolean' }, checks: { type: 'boolean' },
      },
    },
    threatModel: {
      type: 'object', required: ['description', 'knowledge', 'norm', 'epsilons', 'targeted', 'catalogue'],
      properties: {
        description: { type: 'string' }, knowledge: { const: 'white-box' }, norm: { enum: NORM_NAMES },
        epsilons: { type: 'array', items: { type: 'number' } }, targeted: { const: false },
        catalogue: { type: 'array', items: { type: 'object', required: ['source', 'id', 'name'], properties: { source: { type: 'string' }, id: { type: 'string' }, name: { type: 'string' } } } },
      },
    },
    cleanAccuracy: { $ref: '#/$defs/fraction' },
    evaluation: {
      type: 'object', required: ['preset', 'complete', 'note'], additionalProperties: false,
      properties: { preset: { type: ['string', 'null'] }, complete: { type: 'boolean' }, note: { type: 'string' } },
    },
    minimumNorm: {
      type: 'object', required: ['norm', 'attacks', 'median', 'found', 'distances'], additionalProperties: false,
      properties: {
        norm: { enum: NORM_NAMES }, attacks: { type: 'array', items: { type: 'string' } },
        median: { type: ['number', 'null'], minimum: 0 }, found: { type: 'integer', minimum: 0 },
        distances: { type: 'array', items: { type: ['number', 'null'], minimum: 0 } },
        foundBy: { type: 'array', items: { type: ['string', 'null'] } },
      },
    },
    results: {
      type: 'array',
      items: {
        type: 'object', required: ['eps', 'attacks', 'worstCase'], additionalProperties: false,
        properties: {
          eps: { type: 'number', minimum: 0 },
          attacks: {
            type: 'array',
            items: {
              type: 'object', additionalProperties: false,
              required: ['attack', 'attacked', 'successes', 'successRate', 'robustAccuracy', 'robustAccuracyAfter', 'perturbation', 'seconds'],
              properties: {
                attack: { type: 'string' }, attacked: { type: 'integer', minimum: 0 }, successes: { type: 'integer', minimum: 0 },
                successRate: { oneOf: [{ $ref: '#/$defs/fraction' }, { type: 'null' }] },
                robustAccuracy: { oneOf: [{ $ref: '#/$defs/fraction' }, { type: 'null' }] },
                robustAccuracyAfter: { $ref: '#/$defs/fraction' },
                perturbation: { type: 'object', required: ['linf', 'l2'], properties: { linf: { $ref: '#/$defs/stats' }, l2: { $ref: '#/$defs/stats' }, l1: { $ref: '#/$defs/stats' }, l0: { $ref: '#/$defs/stats' } } },
                seconds: { type: 'number', minimum: 0 },
              },
            },
          },
          worstCase: {
            type: 'object', required: ['robustAccuracy', 'perClass'],
            properties: {
              robustAccuracy: { $ref: '#/$defs/fraction' },
              perClass: {
                type: 'array',
                items: {
                  type: 'object', required: ['label', 'name', 'examples', 'robustAccuracy'],
                  properties: { label: { type: 'integer' }, name: { type: 'string' }, examples: { type: 'integer' }, robustAccuracy: { oneOf: [{ $ref: '#/$defs/fraction' }, { type: 'null' }] } },
                },
              },
            },
          },
        },
      },
    },
    checks: {
      type: 'array',
      items: {
        type: 'object', required: ['id', 'status', 'message'],
        properties: { id: { type: 'string' }, status: { enum: ['pass', 'warn'] }, message: { type: 'string' }, suggestion: { type: 'string' }, details: { type: 'object' } },
      },
    },
    provenance: {
      type: 'object', required: ['model', 'data'],
      properties: {
        model: { oneOf: [{ type: 'null' }, { type: 'object', required: ['sha256', 'files'], properties: { sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, files: { type: 'object' } } }] },
        data: { type: 'object', required: ['name', 'examples', 'sha256'], properties: { name: { type: 'string' }, examples: { type: 'integer', minimum: 0 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
      },
    },
    shard: {
      type: 'object', required: ['index', 'count', 'start', 'end', 'labels', 'predictions', 'outcomes', 'distance'],
      properties: { index: { type: 'integer', minimum: 0 }, count: { type: 'integer', minimum: 1 }, start: { type: 'integer', minimum: 0 }, end: { type: 'integer', minimum: 0 } },
    },
    timing: {
      type: 'object', required: ['seconds', 'examplesPerSecond'],
      properties: { seconds: { type: 'number', minimum: 0 }, examplesPerSecond: { type: 'number', minimum: 0 } },
    },
  },
} as const;

/** Robust accuracy at eps from the minimum-norm distances: the fraction with distance > eps. */
export function robustAtDistance(distances: ReadonlyArray<number | null>, eps: number): number {
  if (distances.length === 0) return 0;
  return distances.filter((d) => d === null || d > eps).length / distances.length;
}

export function stats(values: ArrayLike<number>): Stats {
  if (values.length === 0) return { mean: null, median: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return {
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    median: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
    max: sorted[sorted.length - 1]!,
  };
}
