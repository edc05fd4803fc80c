import type { z } from "zod";

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  transform?: (value: unknown, ctx: unknown) => unknown;
}

const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** A context for running a preprocessor on its own: its issues are not wanted here. */
const QUIET = { value: undefined, issues: [], addIssue: () => undefined };

/**
 * Strips optional/default/nullable wrappers to reach the schema that does the checking. A
 * preprocess (a pipe from a transform) is walked through to its output schema, with `value`
 * (when given) passed through the preprocessor, as parsing would.
 */
function reach(schema: z.ZodType, value: unknown): { s: z.ZodType; value: unknown } {
  let s = schema;
  let v = value;
  for (;;) {
    const d = def(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in && d.out && def(d.in).type === "transform") {
      const fn = def(d.in).transform;
      if (fn && v !== undefined) v = fn(v, { ...QUIET, value: v });
      s = d.out;
    } else if (d.type === "pipe" && d.in) s = d.in;
    else return { s, value: v };
  }
}

export function unwrap(schema: z.ZodType): z.ZodType {
  return reach(schema, undefined).s;
}

/** The option of a discriminated union that `value` takes, or undefined when it takes none. */
function optionOf(d: Def, value: unknown): z.ZodType | undefined {
  if (!d.discriminator || value === null || typeof value !== "object") return undefined;
  const tag = (value as Record<string, unknown>)[d.discriminator];
  return d.options?.find((o) => {
    const lit = def(unwrap(o)).shape?.[d.discriminator!];
    const values = lit ? (def(lit) as { values?: unknown[] }).values : undefined;
    return values?.includes(tag) ?? false;
  });
}

/**
 * The schema for a key path, and the value there (taken from `root`, the raw config, when given,
 * and passed through the preprocessors on the way): the value picks a union's option.
 */
function locate(schema: z.ZodType, path: readonly PropertyKey[], root: unknown): { s: z.ZodType; value: unknown } | undefined {
  let here = reach(schema, root);
  for (const seg of path) {
    const d = def(here.s);
    let next: z.ZodType | undefined;
    if (d.type === "object" && d.shape && typeof seg === "string") next = d.shape[seg];
    else if (d.type === "array" && d.element && typeof seg === "number") next = d.element;
    else if (d.type === "union" && d.options && typeof seg === "string") {
      // The option the value takes; without one, the first option that has the key (shared keys have one schema).
      const option = optionOf(d, here.value);
      next = option ? def(unwrap(option)).shape?.[seg] : d.options.map((o) => def(unwrap(o)).shape?.[seg]).find((x) => x !== undefined);
    }
    if (!next) return undefined;
    const v = here.value;
    here = reach(next, v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[seg] : undefined);
  }
  return here;
}

/** The schema for a key path, or undefined when the path leaves the schema. */
export function schemaAt(schema: z.ZodType, path: readonly PropertyKey[], root?: unknown): z.ZodType | undefined {
  return locate(schema, path, root)?.s;
}

const tagOf = (d: Def, option: z.ZodType): unknown => {
  const lit = def(unwrap(option)).shape?.[d.discriminator!];
  return lit ? (def(lit) as { values?: unknown[] }).values?.[0] : undefined;
};

/** The keys the object schema at `path` knows; for a union, those of the option the value at `path` takes. */
export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[], root?: unknown): string[] {
  const at = locate(schema, path, root);
  if (!at) return [];
  const d = def(at.s);
  if (d.type === "object" && d.shape) return Object.keys(d.shape);
  const option = d.type === "union" ? optionOf(d, at.value) : undefined;
  return option ? Object.keys(def(unwrap(option)).shape ?? {}) : [];
}

/**
 * For a key that the union's option at `path` lacks: the discriminator, the option's value of
 * it, and the values whose options have the key (`realtime` belongs to `source: file`).
 */
export function keyOwners(
  schema: z.ZodType,
  path: readonly PropertyKey[],
  key: string,
  root?: unknown,
): { discriminator: string; value: unknown; owners: unknown[] } | undefined {
  const at = locate(schema, path, root);
  const d = at ? def(at.s) : undefined;
  if (!at || !d || d.type !== "union" || !d.discriminator || !d.options) return undefined;
  const option = optionOf(d, at.value);
  const owners = d.options.filter((o) => def(unwrap(o)).shape?.[key] !== undefined).map((o) => tagOf(d, o));
  return { discriminator: d.discriminator, value: option ? tagOf(d, option) : undefined, owners };
}

/** Bounds of a number schema, for messages like "must be 1..60, got 0". */
export function numberBounds(root: z.ZodType, path: readonly PropertyKey[]): { min?: number; max?: number } {
  const s = schemaAt(root, path);
  if (!s || def(s).type !== "number") return {};
  const n = s as z.ZodNumber;
  const out: { min?: number; max?: number } = {};
  if (typeof n.minValue === "number" && Number.isFinite(n.minValue)) out.min = n.minValue;
  if (typeof n.maxValue === "number" && Number.isFinite(n.maxValue)) out.max = n.maxValue;
  return out;
}
