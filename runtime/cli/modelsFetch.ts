import path from "node:path";
import { createRootLogger } from "../log/logger.js";
import { EXIT_FATAL, flag, usageError, type CliCommand } from "./command.js";
import { EXIT_MODEL, positional } from "./modelsAdd.js";

export const modelsFetchCommand: CliCommand = {
  name: "models fetch",
  synopsis: "models fetch NAME",
  summary: "download a known COCO detector, check its sha256 and add it",
  get help() {
    return `Usage: cityedge models fetch NAME [--from FILE] [--url URL] [--out DIR] [--force] [--no-run]

Downloads a detector of the catalogue (public, permissively licensed, COCO-trained), each pinned
by URL at a fixed commit and by sha256, checks the file, and adds it as models add does (its
manifest in DIR, default models/NAME). On an offline device, --from FILE takes a copy of the
same file (its sha256 must match); --url takes it from a mirror (same check).

  --list      the catalogue: names, licences, sources
  --no-run    skip the trial run on the still (installing for another machine)
  --json      print one JSON object

Exit codes: 0 added, 64 bad command line, 65 not in the catalogue, download failed or the file is
not the pinned one.`;
  },

  async run(args) {
    const { CATALOGUE } = await import("../detect/catalogue.js");
    if (args.includes("--list")) {
      for (const e of CATALOGUE) {
        process.stdout.write(`${e.name}: ${e.summary}\n  licence ${e.licence} (${e.licence_url})\n  file    ${e.url}\n  sha256  ${e.sha256}\n`);
      }
      return 0;
    }
    const name = positional(args, ["--from", "--url", "--out"]);
    if (name === undefined) return usageError(modelsFetchCommand, `missing NAME (known: ${CATALOGUE.map((e) => e.name).join(", ")})`);
    const json = args.includes("--json");
    const log = createRootLogger({ level: "warn", pretty: false, destination: process.stderr });
    const { fetchModel } = await import("../detect/fetchModel.js");
    const { AddModelError, STILL } = await import("../detect/addModel.js");
    let added;
    try {
      added = await fetchModel(name, {
        log,
        ...(flag(args, "--from") !== undefined ? { from: flag(args, "--from")! } : {}),
        ...(flag(args, "--url") !== undefined ? { url: flag(args, "--url")! } : {}),
        ...(flag(args, "--out") !== undefined ? { out: flag(args, "--out")! } : {}),
        force: args.includes("--force"),
      });
    } catch (err) {
      if (err instanceof AddModelError) {
        process.stderr.write(`cityedge models fetch: ${name}: ${err.message}\n`);
        return EXIT_MODEL;
      }
      throw err;
    }
    let trial;
    if (!args.includes("--no-run")) {
      const { tryModel } = await import("../detect/tryModel.js");
      trial = await tryModel(added.manifestFile, STILL, createRootLogger({ level: "silent", pretty: false, destination: process.stderr }));
    }
    const m = added.manifest;
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ v: 1, name, manifest: added.manifestFile, id: m.id, decoder: added.decoder, source: added.source, licence: m.licence, ...(trial ? { trial } : {}) })}\n`,
      );
    } else {
      const rel = path.relative(process.cwd(), added.manifestFile);
      process.stdout.write(
        `fetched ${name} (${added.source === "file" ? "from the file given" : "downloaded"}, sha256 checked; licence ${String(m.licence)}): ${rel.startsWith("..") ? added.manifestFile : rel}\n`,
      );
      if (trial) {
        process.stdout.write(`  found on ${path.basename(trial.still)}: ${trial.objects.map((o) => o.label).join(", ") || "nothing"}\n`);
        for (const p of trial.providers)
          process.stdout.write(`  ${p.provider.padEnd(10)}${p.ms !== undefined ? `${p.ms} ms per run` : `unavailable: ${p.error}`}\n`);
        if (trial.providers.every((p) => p.ms === undefined)) return EXIT_FATAL;
      }
    }
    return 0;
  },
};
