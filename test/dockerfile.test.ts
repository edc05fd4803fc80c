import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers/sharedData.js";

/**
 * Dockerfile.jetson cannot be built here (no Docker engine, no Jetson): it is linted with
 * dockerfile-utils (the Dockerfile language server's validator) and its instructions are checked
 * against hadolint's main rules and against the rest of the repository.
 */
const FILE = path.join(REPO_ROOT, "Dockerfile.jetson");
const text = readFileSync(FILE, "utf8");
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();
const lines = text.split("\n");
/** The instruction's arguments as written, flags (--from, --interval …) included, continuations joined. */
function args(i: Instruction): string {
  const { start, end } = i.getRange();
  const src = lines.slice(start.line, end.line + 1);
  src[src.length - 1] = src[src.length - 1]!.slice(0, end.character);
  src[0] = src[0]!.slice(start.character);
  return src
    .join("\n")
    .replace(/\\\n\s*/g, "")
    .replace(/^\S+\s+/, "")
    .trim();
}

/** The instructions of each stage, in order. */
function stages(): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of instructions) {
    if (i.getKeyword() === "FROM") out.push([]);
    out.at(-1)?.push(i);
  }
  return out;
}
const final = stages().at(-1)!;
const argDefault = (name: string) =>
  dockerfile
    .getInitialARGs()
    .map(args)
    .find((a) => a.startsWith(`${name}=`))
    ?.slice(name.length + 1);

describe("Dockerfile.jetson", () => {
  it("lints clean", () => {
    expect(validate(text).map((d) => `${d.range.start.line + 1}: ${typeof d.message === "string" ? d.message : d.message.value}`)).toEqual([]);
  });

  it("builds on JetPack 6 (L4T r36) images with pinned tags", () => {
    const froms = dockerfile.getFROMs().filter((f) => f.getImage() !== "scratch");
    expect(froms).toHaveLength(3);
    expect(argDefault("L4T_TAG")).toMatch(/^r36\.\d+\.\d+$/);
    for (const f of froms) expect(f.getImage()).toBe("nvcr.io/nvidia/l4t-jetpack:${L4T_TAG}");
  });

  it("builds onnxruntime with CUDA, TensorRT and the Node binding, at the version package-lock.json installs", () => {
    const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version: string }> };
    expect(argDefault("ORT_VERSION")).toBe(lock.packages["node_modules/onnxruntime-node"]!.version);
    const build = instructions.find((i) => i.getKeyword() === "RUN" && args(i).includes("./build.sh"))!;
    for (const flag of ["--use_cuda", "--use_tensorrt", "--build_nodejs", "--build_shared_lib", "--config Release"])
      expect(args(build)).toContain(flag);
    // The binding replaces the npm package's CPU-only one, where onnxruntime-node loads it from.
    const app = stages().find((st) => st[0] && args(st[0]).endsWith(" AS app"))!;
    const copy = app.find((i) => i.getKeyword() === "COPY" && args(i).startsWith("--from=ort"))!;
    expect(args(copy)).toBe("--from=ort /out/ ./node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/");
    expect(existsSync(path.join(REPO_ROOT, "node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node"))).toBe(true);
  });

  it("patches the Node binding before building it, and exports the binding alone as a stage", () => {
    const ort = stages().find((st) => st[0] && args(st[0]).endsWith(" AS ort"))!;
    const steps = ort.map((i) => `${i.getKeyword()} ${args(i)}`);
    const patch = steps.findIndex((s) => s === "RUN python3 /src/cityedge-patch/apply-patch.py /src/onnxruntime");
    const copy = steps.findIndex((s) => s === "COPY scripts/onnxruntime/ /src/cityedge-patch/");
    const build = steps.findIndex((s) => s.includes("./build.sh"));
    const clone = steps.findIndex((s) => s.includes("git clone"));
    expect(clone).toBeGreaterThan(0);
    expect([clone < copy, copy < patch, patch < build]).toEqual([true, true, true]);
    // install.sh reads the marker file to check the binding's onnxruntime version.
    expect(steps.find((s) => s.includes("cityedge-binding.json"))).toContain('"onnxruntime":"%s"');
    const binding = stages().find((st) => st[0] && args(st[0]) === "scratch AS ort-binding")!;
    expect(binding.map(args)).toEqual(["scratch AS ort-binding", "--from=ort /out/ /"]);
  });

  it("uses a Node release line that package.json's engines accept", () => {
    const engines = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    const majors = [...engines.matchAll(/\^(\d+)/g)].map((m) => m[1]);
    expect(majors.length).toBeGreaterThan(0);
    const node = argDefault("NODE_VERSION");
    expect(node).toMatch(/^\d+\.\d+\.\d+$/);
    expect(majors).toContain(node?.split(".")[0]);
    // The bare-metal install bundles the same Node (scripts/flash/lib.sh).
    expect(readFileSync(path.join(REPO_ROOT, "scripts/flash/lib.sh"), "utf8")).toContain(`\nCE_NODE_VERSION=${node}\n`);
  });

  it("installs NVIDIA's ffmpeg with Jetson hardware decoding", () => {
    const run = final
      .filter((i) => i.getKeyword() === "RUN")
      .map(args)
      .join("\n");
    expect(run).toContain("repo.download.nvidia.com/jetson/ffmpeg");
    expect(run).toMatch(/apt-get install -y --no-install-recommends ffmpeg/);
  });

  it("follows hadolint's rules: pipefail before pipes, no apt caches, --no-install-recommends", () => {
    for (const stage of stages()) {
      let pipefail = false;
      for (const i of stage) {
        const a = args(i);
        if (i.getKeyword() === "SHELL") pipefail = a.includes("pipefail");
        if (i.getKeyword() !== "RUN") continue;
        if (/[^|]\|[^|]/.test(a))
          expect({ line: i.getRange().start.line + 1, pipefail }).toEqual({ line: i.getRange().start.line + 1, pipefail: true });
        if (a.includes("apt-get install")) {
          expect(a).toContain("--no-install-recommends");
          expect(a).toContain("apt-get update");
          expect(a).toContain("rm -rf /var/lib/apt/lists/*");
        }
        if (a.includes("pip3 install")) expect(a).toContain("--no-cache-dir");
      }
    }
  });

  it("runs as a dedicated non-root user, with the daemon as entrypoint", () => {
    const users = final.filter((i) => i.getKeyword() === "USER").map(args);
    expect(users.at(-1)).toBe("cityedge");
    const useradd = final.map(args).find((a) => a.includes("useradd"))!;
    expect(useradd).toMatch(/--system --uid 10001 --gid cityedge --groups video/);
    expect(args(final.find((i) => i.getKeyword() === "ENTRYPOINT")!)).toBe('["/opt/cityedge/bin/cityedge"]');
    expect(args(final.find((i) => i.getKeyword() === "CMD")!)).toBe('["run", "--config", "/etc/cityedge/config.yaml"]');
  });

  it("checks /healthz on the port the daemon serves, and keeps data and TensorRT engines on volumes", () => {
    const env = final
      .filter((i) => i.getKeyword() === "ENV")
      .map(args)
      .join(" ");
    const port = /CITYEDGE__HTTP__PORT=(\d+)/.exec(env)![1];
    const dataDir = /CITYEDGE__DATA_DIR=(\S+)/.exec(env)![1];
    const health = args(final.find((i) => i.getKeyword() === "HEALTHCHECK")!);
    expect(health).toContain(`http://127.0.0.1:${port}/healthz`);
    expect(health).toMatch(/--start-period=\d+m/);
    // The models' default engine cache is <data_dir>/trt-cache (runtime/config/sections/models.ts).
    expect(args(final.find((i) => i.getKeyword() === "VOLUME")!)).toBe(`["${dataDir}", "${dataDir}/trt-cache"]`);
    expect(readFileSync(path.join(REPO_ROOT, "runtime/config/sections/models.ts"), "utf8")).toContain("default <data_dir>/trt-cache/<model id>");
  });

  it("builds the web console into the image: its sources and build script are there before npm ci, whose prepare builds it", () => {
    const app = stages().find((st) => args(st[0]!).endsWith("AS app"))!;
    const at = (pred: (i: Instruction) => boolean) => app.findIndex(pred);
    const ci = at((i) => i.getKeyword() === "RUN" && /\bnpm ci\b/.test(args(i)));
    const copies = (src: string) => at((i) => i.getKeyword() === "COPY" && args(i).split(/\s+/).includes(src));
    for (const src of ["runtime", "scripts/build-console.mjs", "tsconfig.build.json"]) {
      expect(copies(src), src).toBeGreaterThan(-1);
      expect(copies(src), src).toBeLessThan(ci);
    }
    expect(args(app[ci]!)).toMatch(/npm ci && test -f dist\/console\/index\.html && test -f dist\/console\/app\.js && npm prune --omit=dev/);
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.prepare).toBe("npm run build");
    expect(pkg.scripts.build).toContain("node scripts/build-console.mjs");
  });

  it("copies only files that exist in the repository", () => {
    for (const i of instructions.filter((x) => x.getKeyword() === "COPY" && !args(x).startsWith("--from"))) {
      const parts = args(i).split(/\s+/);
      for (const src of parts.slice(0, -1)) expect({ src, exists: existsSync(path.join(REPO_ROOT, src)) }).toEqual({ src, exists: true });
    }
    accessSync(path.join(REPO_ROOT, "scripts/flash/launcher.sh"), constants.X_OK);
  });
});
