import { createReadStream, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export interface CsvTable {
  header: string[];
  rows: string[][];
}

/** One CSV line's cells: comma-separated, optional double quotes ("" inside them is a quote), trimmed. */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/**
 * A CSV file read line by line (any length, little memory): the header first, then each data
 * line with its 1-based line number. Blank lines are skipped.
 */
export async function* streamCsv(file: string): AsyncGenerator<{ line: number; cells: string[] }> {
  const input = createReadStream(file, { encoding: "utf8" });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of lines) {
      n++;
      if (text.trim() === "") continue;
      yield { line: n, cells: splitCsvLine(text) };
    }
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    lines.close();
    input.destroy();
  }
}

/** A small CSV reader for replay files: comma-separated, optional double quotes, a header row. */
export function readCsv(file: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const [head, ...body] = lines;
  if (head === undefined) throw new Error(`${file}: empty file (a header row is needed)`);
  return { header: splitCsvLine(head), rows: body.map(splitCsvLine) };
}

/**
 * ISO 8601 with or without an offset; without one it is the wall clock of `timeZone`
 * (`offsetAt(ts)` gives that zone's offset from UTC at an instant).
 */
export function parseCsvTime(text: string, offsetAt: (ts: number) => number = () => 0): number {
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  if (hasZone) return Date.parse(text);
  const wall = Date.parse(`${text.replace(" ", "T")}Z`);
  if (Number.isNaN(wall)) return wall;
  // Twice: the offset at the first guess may differ from the offset at the answer near a clock change.
  const guess = wall - offsetAt(wall);
  return wall - offsetAt(guess);
}
