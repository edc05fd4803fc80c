import { copyFileSync, mkdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../log/logger.js";
import { sha256File } from "../inference/manifest.js";
import { download } from "../modelUpdate/download.js";
import { addModel, AddModelError, type AddedModel } from "./addModel.js";
import { CATALOGUE, catalogueEntry } from "./catalogue.js";

export interface FetchOptions {
  /** Take the file from here instead of downloading it (offline devices); its sha256 must still match. */
  from?: string;
  /** Download from here instead of the pinned URL (a mirror); its sha256 must still match. */
  url?: string;
  /** Where the model goes (default: models/<name>). */
  out?: string;
  force?: boolean;
  log: Logger;
  timeoutMs?: number;
}

/**
 * Downloads (or takes `from`) a catalogue model, checks it against its pinned sha256, and adds it
 * (manifest, labels, layout) as `models add` does. Nothing is left behind on a mismatch.
 */
export async function fetchModel(name: string, o: FetchOptions): Promise<AddedModel & { source: "download" | "file"; url?: string }> {
  const e = catalogueEntry(name);
  if (!e) throw new AddModelError(`no model "${name}" in the catalogue (known: ${CATALOGUE.map((c) => c.name).join(", ")})`);
  const out = path.resolve(o.out ?? path.join("models", e.name));
  mkdirSync(out, { recursive: true });
  const file = path.join(out, `${e.name.replace(/-/g, "_")}.onnx`);
  const part = `${file}.part`;
  rmSync(part, { force: true });
  let url: string | undefined;
  try {
    if (o.from) {
      const got = await sha256File(o.from).catch((err: NodeJS.ErrnoException) => {
        throw new AddModelError(`--from ${o.from}: ${err.code === "ENOENT" ? "file not found" : err.message}`);
      });
      if (got !== e.sha256)
        throw new AddModelError(`--from ${o.from}: sha256 ${got}, but ${e.name} is pinned at ${e.sha256}: not the catalogue's file`);
      copyFileSync(o.from, part);
    } else {
      url = o.url ?? e.url;
      let got;
      try {
        got = await download(url, part, {
          maxBytes: e.bytes,
          timeoutMs: o.timeoutMs ?? 300_000,
          log: o.log,
        });
      } catch (err) {
        throw new AddModelError(`${(err as Error).message} (offline? take the file from elsewhere with --from FILE)`);
      }
      if (got.sha256 !== e.sha256)
        throw new AddModelError(`${url}: sha256 ${got.sha256}, but ${e.name} is pinned at ${e.sha256}: refusing a file that is not the catalogue's`);
    }
    renameSync(part, file);
  } finally {
    rmSync(part, { force: true });
  }
  const added = await addModel(file, {
    id: e.name,
    labels: e.labels,
    out,
    force: o.force ?? false,
    extra: { licence: e.licence, licence_url: e.licence_url, origin: { url: e.url, ...e.source, sha256: e.sha256 } },
  });
  if (added.decoder !== e.decoder) throw new AddModelError(`${e.name}: the layout found is ${added.decoder}, the catalogue says ${e.decoder}`);
  return { ...added, source: o.from ? "file" : "download", ...(url ? { url } : {}) };
}
