#!/usr/bin/env node
// `npm start` runs this first: it compiles the TypeScript only when a source is newer than the
// last build, so starting the demo again does not spend 20 s in tsc.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const stamp = path.join(root, "dist", ".build-stamp");
const SOURCES = ["runtime", "drivers", "bench", "models", "package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"];

function newest(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return /\.(ts|json|html|css)$/.test(p) || path.basename(p).startsWith("package") ? st.mtimeMs : 0;
  let m = 0;
  for (const e of readdirSync(p)) if (e !== "node_modules" && e !== ".cache") m = Math.max(m, newest(path.join(p, e)));
  return m;
}

const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
const changed = Math.max(...SOURCES.map((s) => newest(path.join(root, s))));
if (built > 0 && changed <= built) process.exit(0);
process.stdout.write("cityedge: building (sources changed since the last build)\n");
const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(stamp, `${new Date().toISOString()}\n`);
