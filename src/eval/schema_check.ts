/**
 * Checks a JSON value against a JSON Schema written with the keywords advkit's own schemas use
 * (type, const, enum, required, properties, additionalProperties, items, minItems, maxItems,
 * minimum, maximum, pattern, oneOf, $ref into $defs): untrusted reports (a shard's, a baseline)
 * are checked against REPORT_JSON_SCHEMA before any field is used. Returns the first problem as
 * "at /results/0/eps: must be a number", or undefined.
 */
type Schema = Record<string, unknown>;

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);

export function schemaProblem(value: unknown, schema: Schema, root: Schema = schema, at = ''): string | undefined {
  const where = at || '/';
  if (typeof schema.$ref === 'string') {
    const target = (schema.$ref as string).replace(/^#\//, '').split('/').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], root);
    return schemaProblem(value, target as Schema, root, at);
  }
  if (Array.isArray(schema.oneOf)) {
    const fits = (schema.oneOf as Schema[]).filter((s) => schemaProblem(value, s, root, at) === undefined).length;
    return fits === 1 ? undefined : `at ${where}: matches ${fits} of the allowed forms, not exactly one`;
  }
  if (schema.const !== undefined && value !== schema.const) return `at ${where}: must be ${JSON.stringify(schema.const)}`;
  if (Array.isArray(schema.enum) && !(schema.enum as unknown[]).includes(value)) return `at ${where}: must be one of ${(schema.enum as unknown[]).map((e) => JSON.stringify(e)).join(', ')}`;
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    const t = typeOf(value);
    if (!types.some((want) => want === t || (want === 'number' && t === 'integer'))) return `at ${where}: must be ${types.join(' or ')}, not ${t}`;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return `at ${where}: must be a finite number`;
    if (typeof schema.minimum === 'number' && value < schema.minimum) return `at ${where}: must be >= ${schema.minimum}`;
    if (typeof schema.maximum === 'number' && value > schema.maximum) return `at ${where}: must be <= ${schema.maximum}`;
  }
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern as string).test(value)) return `at ${where}: does not match ${schema.pattern}`;
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) return `at ${where}: must have at least ${schema.minItems} items`;
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) return `at ${where}: must have at most ${schema.maxItems} items`;
    if (schema.items && typeof schema.items === 'object') {
      for (const [i, item] of value.entries()) { const p = schemaProblem(item, schema.items as Schema, root, `${at}/${i}`); if (p) return p; }
    }
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const k of (schema.required as string[] | undefined) ?? []) if (!(k in obj)) return `at ${where}: lacks "${k}"`;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) { const p = schemaProblem(v, props[k]!, root, `${at}/${k}`); if (p) return p; }
      else if (schema.additionalProperties === false) return `at ${where}: has "${k}", which the schema does not allow`;
    }
  }
  return undefined;
}
