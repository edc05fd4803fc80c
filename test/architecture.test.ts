/**
 * The rooms' rules that a reader can check: drivers do not reach into the daemon's MQTT, history
 * or meter pipeline, and nothing outside the drivers names a kind of camera or meter (the
 * registries answer every question about a kind).
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { METER_KINDS } from "../drivers/meter/kinds.js";
import { SOURCE_KINDS } from "../drivers/camera/sources.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const sources = (dir: string): string[] =>
  readdirSync(path.join(REPO_ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(dir, f));

/** The repository paths a file imports (relative imports only), without the extension. */
function imports(file: string): string[] {
  const text = readFileSync(path.join(REPO_ROOT, file), "utf8");
  return [...text.matchAll(/(?:import|export)[^"']*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g)].map((m) =>
    path.join(path.dirname(file), m[1] ?? m[2]!).replace(/\.js$/, ""),
  );
}

describe("rooms", () => {
  it("drivers/ imports nothing of runtime/mqtt, runtime/history, runtime/meters or runtime/daemon.ts", () => {
    const banned = [/^runtime\/mqtt\//, /^runtime\/history\//, /^runtime\/meters\//, /^runtime\/daemon$/];
    const offenders = sources("drivers").flatMap((f) =>
      imports(f)
        .filter((i) => banned.some((b) => b.test(i)))
        .map((i) => `${f} → ${i}`),
    );
    expect(offenders).toEqual([]);
  });

  it("nothing in runtime/ compares a driver or source with a kind's name, or switches on one", () => {
    const names = [...METER_KINDS.map((k) => k.driver), ...SOURCE_KINDS.map((k) => k.kind)];
    // "mqtt", "http" and "file" are also words of other contracts (part kinds, a model's source):
    // for those only a meter's `driver` compared with them counts.
    const distinct = names.filter((n) => !["mqtt", "http", "file"].includes(n));
    const q = (list: string[]) => `["'\`](?:${list.join("|")})["'\`]`;
    const compare = new RegExp(
      `(?:driver|source|kind)\\s*[!=]==?\\s*${q(distinct)}|${q(distinct)}\\s*[!=]==?\\s*[\\w.]*(?:driver|source|kind)\\b|driver\\s*[!=]==?\\s*${q(names)}`,
    );
    const cases = new RegExp(`case\\s+${q(distinct)}`);
    const offenders = sources("runtime").filter((f) => {
      const text = readFileSync(path.join(REPO_ROOT, f), "utf8");
      return compare.test(text) || cases.test(text);
    });
    expect(offenders).toEqual([]);
  });
});
