#!/usr/bin/env node
// Bundles the web console (runtime/console/web) into dist/console: app.js, app.css and
// index.html, with uPlot inside. No CDN: devices are offline, so everything the page needs is here.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "runtime", "console", "web");
const out = path.join(root, "dist", "console");
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: { app: path.join(src, "app.ts") },
  outdir: out,
  bundle: true,
  format: "esm",
  target: ["chrome100", "firefox100", "safari15"],
  minify: true,
  sourcemap: "linked",
  legalComments: "none",
  banner: { js: "/* cityedge web console. Bundled third-party code and its licence: THIRD-PARTY-NOTICES.txt */" },
  metafile: true,
  logLevel: "warning",
});
copyFileSync(path.join(src, "index.html"), path.join(out, "index.html"));
// The licences of what the bundle carries (minifying drops their comments).
const notice = (pkg) => {
  const dir = path.join(root, "node_modules", pkg);
  const { version, license } = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
  return `${pkg} ${version} (${license})\n\n${readFileSync(path.join(dir, "LICENSE"), "utf8").trim()}\n`;
};
writeFileSync(path.join(out, "THIRD-PARTY-NOTICES.txt"), ["uplot"].map(notice).join("\n\n"));
const sizes = Object.entries(result.metafile.outputs)
  .filter(([f]) => !f.endsWith(".map"))
  .map(([f, o]) => `${path.basename(f)} ${(o.bytes / 1024).toFixed(1)} KiB`);
process.stdout.write(`console built: ${sizes.join(", ")}\n`);
