/**
 * Errors raised by advkit. Every error names the function, the argument and the bad value,
 * and says what to do. `code` is stable and machine-readable; `exitCode` is what the CLI
 * exits with (2: bad usage or bad input, 1: the run itself failed).
 */
export class AdvkitError extends Error {
  readonly code: string;
  readonly exitCode: 1 | 2;
  constructor(code: string, message: string, exitCode: 1 | 2 = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** A bad argument value given to a library function or CLI option. */
export class InvalidArgumentError extends AdvkitError {
  constructor(message: string) {
    super('E_INVALID_ARGUMENT', message, 2);
  }
}

/** A file, directory or data set that is missing, unreadable, truncated or corrupt. */
export class DataError extends AdvkitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_DATA', message, 2, options);
  }
}

/** A model file or model object that cannot be used. */
export class ModelError extends AdvkitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_MODEL', message, 2, options);
  }
}

/** A backend that was asked for explicitly but cannot be loaded here. */
export class BackendError extends AdvkitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_BACKEND', message, 2, options);
  }
}

/** Shows a value in an error message: short, and with its type where that helps. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (Array.isArray(value)) {
    const inner = value.slice(0, 8).map(show).join(', ');
    return `[${inner}${value.length > 8 ? ', …' : ''}]`;
  }
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}

/** Throws InvalidArgumentError(`Error in ${fn}: ${what}`) when `ok` is false. */
export function check(ok: boolean, fn: string, what: () => string): asserts ok {
  if (!ok) throw new InvalidArgumentError(`Error in ${fn}: ${what()}`);
}

export function checkFiniteNumber(fn: string, name: string, value: unknown, opts: { min?: number; max?: number; integer?: boolean; minExclusive?: boolean } = {}): number {
  const kind = opts.integer ? 'an integer' : 'a finite number';
  check(typeof value === 'number' && Number.isFinite(value) && (!opts.integer || Number.isInteger(value)), fn,
    () => `${name} must be ${kind}, but got ${show(value)}.`);
  const v = value as number;
  if (opts.min !== undefined) {
    const bad = opts.minExclusive ? v <= opts.min : v < opts.min;
    check(!bad, fn, () => `${name} must be ${opts.minExclusive ? '>' : '>='} ${opts.min}, but got ${v}.`);
  }
  if (opts.max !== undefined) check(v <= opts.max, fn, () => `${name} must be <= ${opts.max}, but got ${v}.`);
  return v;
}

/** A copy of `o` without its undefined values, so `{ ...DEFAULTS, ...defined(o) }` keeps defaults. */
export function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** An error as plain data, to cross a thread boundary (ThreadPool turns it back into an error). */
export interface ErrorPayload {
  message: string;
  name: string;
  code?: string;
  exitCode?: number;
}

export function errorPayload(err: unknown): ErrorPayload {
  const e = err as Error & { code?: string; exitCode?: number };
  return { message: e.message, name: e.name, code: e.code, exitCode: e.exitCode };
}

/** Refuses option names outside `known` (a typo such as `epsilon` would otherwise be ignored). */
export function checkKnownOptions(fn: string, options: object, known: readonly string[]): void {
  const unknown = Object.keys(options ?? {}).filter((k) => !known.includes(k));
  check(unknown.length === 0, fn, () => `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; known: ${known.join(', ')}.`);
}
