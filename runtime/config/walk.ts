import type { z } from "zod";

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
}

const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Strips optional/default/nullable wrappers to reach the schema that does the checking. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const d = def(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else return s;
  }
}

/** The schema for a key path, or undefined when the path leaves the schema. */
export function schemaAt(root: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = unwrap(root);
  for (const seg of path) {
    if (!s) return undefined;
    const d = def(s);
    if (d.type === "object" && d.shape && typeof seg === "string") s = d.shape[seg];
    else if (d.type === "array" && d.element && typeof seg === "number") s = d.element;
    // A union (meters by driver): the first option that has the key; shared keys have one schema.
    else if (d.type === "union" && d.options && typeof seg === "string")
      s = d.options.map((o) => def(unwrap(o)).shape?.[seg]).find((x) => x !== undefined);
    else return undefined;
    s = s ? unwrap(s) : undefined;
  }
  return s;
}

/** The keys an object schema knows, for "did you mean" suggestions. */
export function knownKeys(root: z.ZodType, path: readonly PropertyKey[]): string[] {
  const s = schemaAt(root, path);
  const d = s ? def(s) : undefined;
  return d?.type === "object" && d.shape ? Object.keys(d.shape) : [];
}

/** Bounds of a number schema, for messages like "must be 1..60, got 0". */
export function numberBounds(root: z.ZodType, path: readonly PropertyKey[]): { min?: number; max?: number } {
  const s = schemaAt(root, path) as (z.ZodType & { minValue?: number | null; maxValue?: number | null }) | undefined;
  if (!s || def(s).type !== "number") return {};
  const out: { min?: number; max?: number } = {};
  if (typeof s.minValue === "number" && Number.isFinite(s.minValue)) out.min = s.minValue;
  if (typeof s.maxValue === "number" && Number.isFinite(s.maxValue)) out.max = s.maxValue;
  return out;
}
