import { chmodSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { applyGeometry, GeometryFile } from "../runtime/console/geometry.js";
import { loadConfig } from "../runtime/config/load.js";
import { runCli } from "./helpers/cli.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-geometry-"));
let n = 0;

/** A copy of the shipped demo config (its comments and layout are what must survive an edit), its paths made absolute. */
function demoCopy(): string {
  const file = path.join(tmp, `demo-${n++}.yaml`);
  writeFileSync(
    file,
    readFileSync(path.join(REPO_ROOT, "config/demo.yaml"), "utf8").replaceAll("../models/", `${REPO_ROOT}/models/`).replace("../data/demo", "./data"),
  );
  return file;
}

/** The lines that differ between two texts of the same number of lines. */
function changed(a: string, b: string): [string, string][] {
  const x = a.split("\n");
  const y = b.split("\n");
  expect(y.length).toBe(x.length);
  return x.flatMap((line, i) => (line === y[i] ? [] : [[line, y[i]!] as [string, string]]));
}

const MAIN = { id: "main-road", from: [0.021, 0.378] as [number, number], to: [0.6816, 0.4371] as [number, number], was: 0 };

describe("editing a camera's lines and zones in the config file", () => {
  it("moving an end changes that one number pair and not another byte of the file", () => {
    const text = readFileSync(path.join(REPO_ROOT, "config/demo.yaml"), "utf8");
    const next = applyGeometry(text, "demo-cam", { lines: [{ ...MAIN, to: [0.7, 0.52] }], zones: [] })!;
    expect(changed(text, next)).toEqual([["          to: [0.6816, 0.4371]", "          to: [0.7, 0.52]"]]);
  });

  it("renames, flips and adds, keeping the comments, and drops what was deleted", () => {
    const text = readFileSync(path.join(REPO_ROOT, "config/demo.yaml"), "utf8");
    const next = applyGeometry(text, "demo-cam", {
      lines: [
        { id: "northbound", from: MAIN.to, to: MAIN.from, was: 0 },
        { id: "crossing", from: [0.3, 0.2], to: [0.6, 0.2], classes: ["person"] },
      ],
      zones: [
        {
          id: "stop-box",
          polygon: [
            [0.1, 0.5],
            [0.4, 0.5],
            [0.4, 0.8],
          ],
        },
      ],
    })!;
    for (const comment of text.split("\n").filter((l) => l.trim().startsWith("#"))) expect(next).toContain(comment);
    const cam = (YAML.parse(next) as { cameras: { detection: Record<string, unknown> }[] }).cameras[0]!.detection;
    expect(cam.lines).toEqual([
      { id: "northbound", from: [0.6816, 0.4371], to: [0.021, 0.378] },
      { id: "crossing", from: [0.3, 0.2], to: [0.6, 0.2], classes: ["person"] },
    ]);
    expect(cam.zones).toEqual([
      {
        id: "stop-box",
        polygon: [
          [0.1, 0.5],
          [0.4, 0.5],
          [0.4, 0.8],
        ],
      },
    ]);
    expect(next).toContain("          from: [0.3, 0.2]\n");
    // The keys around the lists are untouched.
    expect(next).toContain("      counts_interval_s: 30\n      detections_max_rate: 5\n");
    const none = applyGeometry(next, "demo-cam", { lines: [], zones: [] })!;
    expect((YAML.parse(none) as { cameras: { detection: Record<string, unknown> }[] }).cameras[0]!.detection).toMatchObject({ lines: [], zones: [] });
  });

  it("saves atomically into the real file behind a symlink, keeping its mode, and the daemon's loader reads it back", async () => {
    const real = demoCopy();
    chmodSync(real, 0o640);
    const link = path.join(tmp, `link-${n++}.yaml`);
    symlinkSync(real, link);
    const file = new GeometryFile(link, {});
    const view = file.read("demo-cam")!;
    expect(view.lines).toEqual([{ id: "main-road", from: [0.021, 0.378], to: [0.6816, 0.4371] }]);
    const r = await file.save("demo-cam", { etag: view.etag, lines: [{ ...MAIN, from: [0.05, 0.4] }], zones: [] });
    expect(r).toMatchObject({ ok: true });
    expect(statSync(link, { throwIfNoEntry: false })?.isFile()).toBe(true);
    expect(statSync(real).mode & 0o777).toBe(0o640);
    expect(loadConfig(link, {}).config.cameras[0]!.detection.lines[0]!.from).toEqual([0.05, 0.4]);
  });

  it("refuses an edit that makes the config invalid with check-config's very problems, and writes nothing", async () => {
    const file = demoCopy();
    const before = readFileSync(file, "utf8");
    const r = await new GeometryFile(file, {}).save("demo-cam", {
      lines: [
        { ...MAIN, id: "main road" },
        { id: "dup", from: [0, 0], to: [1, 1] },
        { id: "dup", from: [0, 1], to: [1, 0] },
      ],
      zones: [],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.status).toBe(422);
    expect(readFileSync(file, "utf8")).toBe(before);
    // The same text through the check-config command: the same lines, file name and all.
    writeFileSync(
      file,
      applyGeometry(before, "demo-cam", {
        lines: [
          { ...MAIN, id: "main road" },
          { id: "dup", from: [0, 0], to: [1, 1] },
          { id: "dup", from: [0, 1], to: [1, 0] },
        ],
        zones: [],
      })!,
    );
    const cli = await runCli(["check-config", file]);
    expect(cli.code).toBe(78);
    const printed = cli.stderr.split("\n").filter((l) => l.startsWith(file));
    expect(r.problems).toEqual(printed);
    expect(r.problems).toEqual([
      `${file}:49:11 cameras[0].detection.lines[0].id: line id must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit, got "main road"`,
      `${file}:55:11 cameras[0].detection.lines[2].id: duplicate id "dup" (also lines[1])`,
    ]);
  });

  it("checks the labels a line counts against its model, as check-config does", async () => {
    const file = demoCopy();
    const r = await new GeometryFile(file, {}).save("demo-cam", { lines: [{ ...MAIN, classes: ["zebra"] }], zones: [] });
    expect(r).toMatchObject({ ok: false, status: 422 });
    if (r.ok) return;
    writeFileSync(file, applyGeometry(readFileSync(file, "utf8"), "demo-cam", { lines: [{ ...MAIN, classes: ["zebra"] }], zones: [] })!);
    const cli = await runCli(["check-config", file]);
    expect(cli.code).toBe(78);
    expect(r.problems).toEqual(cli.stderr.split("\n").filter((l) => l.startsWith(file) && !l.endsWith("(warning)")));
    expect(r.problems.join("\n")).toMatch(/cameras\[0\]\.detection\.lines\[0\]\.classes.*zebra/);
  });

  it("refuses a save over a file that changed since it was read, and an unknown camera", async () => {
    const file = demoCopy();
    const g = new GeometryFile(file, {});
    const view = g.read("demo-cam")!;
    writeFileSync(file, `${readFileSync(file, "utf8")}# edited by hand\n`);
    expect(await g.save("demo-cam", { etag: view.etag, lines: [], zones: [] })).toMatchObject({ ok: false, status: 412 });
    expect(await g.save("gate-9", { lines: [], zones: [] })).toMatchObject({ ok: false, status: 404, message: `no camera "gate-9" in ${file}` });
    expect(readFileSync(file, "utf8")).toContain("main-road");
  });
});
