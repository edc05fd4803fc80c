import { createHash } from "node:crypto";
import { readFileSync, realpathSync, renameSync, statSync, writeFileSync, unlinkSync, chmodSync } from "node:fs";
import path from "node:path";
import { isMap, isScalar, isSeq, parseDocument, type Document, type YAMLMap, type YAMLSeq } from "yaml";
import { z } from "zod";
import { ConfigError, formatProblem, type ConfigProblem } from "../config/errors.js";
import { configTextLocator, parseConfig, type LoadedConfig } from "../config/load.js";
import { checkConfigModels } from "../detect/configCheck.js";

type Point = [number, number];

const POINT = z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]);
const CLASSES = z.array(z.string().min(1)).min(1).optional();
/** `was`: the index the item had in the file, so its node (and the comments on it) is kept. */
const WAS = z.number().int().min(0).optional();

/** What the editor sends: the camera's lines and zones as they should be, in order. */
export const GEOMETRY_EDIT = z.strictObject({
  etag: z.string().optional(),
  lines: z.array(z.strictObject({ id: z.string(), from: POINT, to: POINT, classes: CLASSES, was: WAS })).max(32),
  zones: z.array(z.strictObject({ id: z.string(), polygon: z.array(POINT).min(3).max(64), classes: CLASSES, was: WAS })).max(32),
});

export type GeometryEdit = z.output<typeof GEOMETRY_EDIT>;

/** The lines and zones of one camera as the file has them, and the file's version. */
export interface GeometryView {
  etag: string;
  camera: string;
  lines: { id: string; from: Point; to: Point; classes?: string[] }[];
  zones: { id: string; polygon: Point[]; classes?: string[] }[];
}

export type SaveResult =
  { ok: true; etag: string; loaded: LoadedConfig } | { ok: false; status: 404 | 409 | 412 | 422; message: string; problems: string[] };

const etagOf = (text: string) => createHash("sha256").update(text).digest("base64url").slice(0, 22);
/** Four decimals: a tenth of a pixel on a 4K picture. */
const round = (v: number) => Math.round(v * 10_000) / 10_000;
/** How the project's files write flow lists (`[a, b]`), so untouched lines stay byte for byte. */
const TO_STRING = { lineWidth: 0, flowCollectionPadding: false } as const;

function cameraNode(doc: Document, cameraId: string): YAMLMap | undefined {
  const cams = doc.get("cameras", true);
  if (!isSeq(cams)) return undefined;
  return cams.items.find((it): it is YAMLMap => isMap(it) && it.get("id") === cameraId);
}

function setPoint(doc: Document, map: YAMLMap, key: string, p: Point): void {
  const old = map.get(key, true);
  if (isSeq(old) && old.items.length === 2 && old.items.every((it) => isScalar(it))) {
    // In place: the scalars keep their comments, the list its style.
    (old.items[0] as { value: unknown }).value = round(p[0]);
    (old.items[1] as { value: unknown }).value = round(p[1]);
    return;
  }
  const node = doc.createNode([round(p[0]), round(p[1])]);
  node.flow = true;
  map.set(key, node);
}

function setClasses(doc: Document, map: YAMLMap, classes: readonly string[] | undefined): void {
  if (classes === undefined) {
    map.delete("classes");
    return;
  }
  const node = doc.createNode([...classes]);
  node.flow = true;
  map.set("classes", node);
}

/** Replaces `detection.<key>` of a camera with `items`, reusing the nodes of items that were there (`was`). */
function setList<T extends { was?: number | undefined }>(
  doc: Document,
  det: YAMLMap,
  key: string,
  items: readonly T[],
  fill: (map: YAMLMap, item: T) => void,
): void {
  const old = det.get(key, true);
  const oldItems = isSeq(old) ? old.items : [];
  if (items.length === 0 && !isSeq(old)) return;
  const next = items.map((item) => {
    const prev = item.was !== undefined ? oldItems[item.was] : undefined;
    const map = isMap(prev) ? prev : (doc.createNode({}) as YAMLMap);
    fill(map, item);
    return map;
  });
  if (isSeq(old)) {
    (old as YAMLSeq).items = next;
    // A flow list (`lines: []`) that gets items is written as a block list.
    if (next.length > 0) old.flow = false;
  } else {
    const seq = doc.createNode([]) as YAMLSeq;
    seq.items = next;
    det.set(key, seq);
  }
}

/** The config text with one camera's lines and zones replaced; comments and layout elsewhere are kept as they were. */
export function applyGeometry(text: string, cameraId: string, edit: GeometryEdit): string | undefined {
  const doc = parseDocument(text);
  const cam = cameraNode(doc, cameraId);
  if (!cam) return undefined;
  const found: unknown = cam.get("detection", true);
  let detection: YAMLMap;
  if (isMap(found)) detection = found;
  else {
    detection = doc.createNode({});
    cam.set("detection", detection);
  }
  setList(doc, detection, "lines", edit.lines, (map, l) => {
    map.set("id", l.id);
    setPoint(doc, map, "from", l.from);
    setPoint(doc, map, "to", l.to);
    setClasses(doc, map, l.classes);
  });
  setList(doc, detection, "zones", edit.zones, (map, z) => {
    map.set("id", z.id);
    const poly = doc.createNode(z.polygon.map((p) => [round(p[0]), round(p[1])])) as YAMLSeq;
    for (const it of poly.items) (it as YAMLSeq).flow = true;
    const old = map.get("polygon", true);
    // A polygon written on one line stays on one line.
    if (isSeq(old) && old.flow) poly.flow = true;
    map.set("polygon", poly);
    setClasses(doc, map, z.classes);
  });
  return doc.toString(TO_STRING);
}

/**
 * Reads and saves the lines and zones of a camera in the config file. A save is checked as
 * `check-config` checks a file (the same loader, then the models' manifests against the labels
 * the cameras name: same problems, same messages) before the file is replaced, atomically, so a
 * bad edit never reaches the disk.
 */
export class GeometryFile {
  readonly #file: string;
  readonly #env: NodeJS.ProcessEnv;
  #saving = false;

  constructor(file: string, env: NodeJS.ProcessEnv = process.env) {
    this.#file = file;
    this.#env = env;
  }

  /** The camera's lines and zones in the file now; throws a ConfigError when the file is not valid. */
  read(cameraId: string): GeometryView | undefined {
    const text = readFileSync(this.#file, "utf8");
    const loaded = parseConfig(text, this.#file, this.#env);
    const cam = loaded.config.cameras.find((c) => c.id === cameraId);
    if (!cam) return undefined;
    return {
      etag: etagOf(text),
      camera: cameraId,
      lines: cam.detection.lines.map((l) => ({ id: l.id, from: l.from, to: l.to, ...(l.classes ? { classes: l.classes } : {}) })),
      zones: cam.detection.zones.map((z) => ({ id: z.id, polygon: z.polygon, ...(z.classes ? { classes: z.classes } : {}) })),
    };
  }

  async save(cameraId: string, edit: GeometryEdit): Promise<SaveResult> {
    if (this.#saving) return { ok: false, status: 409, message: "another save is in progress", problems: [] };
    this.#saving = true;
    try {
      return await this.#save(cameraId, edit);
    } finally {
      this.#saving = false;
    }
  }

  async #save(cameraId: string, edit: GeometryEdit): Promise<SaveResult> {
    const text = readFileSync(this.#file, "utf8");
    if (edit.etag !== undefined && edit.etag !== etagOf(text)) {
      return { ok: false, status: 412, message: "the config file changed since it was read; reload the editor and try again", problems: [] };
    }
    const next = applyGeometry(text, cameraId, edit);
    if (next === undefined) return { ok: false, status: 404, message: `no camera "${cameraId}" in ${this.#file}`, problems: [] };
    let loaded: LoadedConfig;
    const invalid = (problems: readonly ConfigProblem[]): SaveResult => ({
      ok: false,
      status: 422,
      message: "the change makes the config invalid; nothing was saved",
      problems: problems.map(formatProblem),
    });
    try {
      loaded = parseConfig(next, this.#file, this.#env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return invalid(err.problems);
    }
    const models = await checkConfigModels(loaded, configTextLocator(next, this.#file));
    if (models.problems.length > 0) return invalid(models.problems);
    // The real file behind a symlink is replaced, not the link; its mode stays.
    const target = realpathSync(this.#file);
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
    try {
      writeFileSync(tmp, next);
      chmodSync(tmp, statSync(target).mode & 0o7777);
      renameSync(tmp, target);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch (cleanup) {
        if ((cleanup as NodeJS.ErrnoException).code !== "ENOENT") throw cleanup;
      }
      throw err;
    }
    return { ok: true, etag: etagOf(next), loaded };
  }
}
