import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { configReference } from "../runtime/config/reference.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
const configDoc = readFileSync(path.join(REPO_ROOT, "docs", "configuration.md"), "utf8");

describe("README", () => {
  it("shows the newcomer's commands near the top", () => {
    const top = readme.split("\n").slice(0, 40).join("\n");
    expect(top).toContain("npm ci");
    expect(top).toContain("npm start");
    expect(top).toContain("npm test");
  });

  it("docs/configuration.md holds the config reference exactly as the schema generates it", () => {
    // Regenerate with: node --import tsx runtime/cli.ts config-reference --write docs/configuration.md
    expect(configDoc).toContain(configReference());
  });

  it("stays short: what, quick start, links (the manual is under docs/)", () => {
    expect(readme.split("\n").length).toBeLessThan(120);
    for (const doc of ["ARCHITECTURE.md", "docs/configuration.md", "docs/mqtt.md", "docs/operations.md", "docs/benchmarks.md"]) {
      expect(readme).toContain(`(${doc})`);
    }
  });

  it("npm scripts behind the README's commands exist", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
      bin: Record<string, string>;
    };
    expect(pkg.scripts.start).toContain("config/demo.yaml");
    expect(pkg.scripts.test).toBe("vitest run");
    expect(pkg.bin.cityedge).toBe("dist/runtime/cli.js");
  });
});
