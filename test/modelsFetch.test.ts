import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CATALOGUE, catalogueEntry, DEFAULT_DETECTOR } from "../runtime/detect/catalogue.js";
import { checkModel } from "../runtime/detect/modelCheck.js";
import { runCli } from "./helpers/cli.js";
import { sha256Of } from "./helpers/detectModels.js";
import { sharedFile } from "./helpers/sharedData.js";

const model = sharedFile("models/yolox_nano.onnx");

describe("the catalogue", () => {
  it("pins each model by a URL at a full commit and a sha256, with its licence", () => {
    for (const e of CATALOGUE) {
      expect(e.url).toContain(e.source.commit);
      expect(e.source.commit).toMatch(/^[0-9a-f]{40}$/);
      expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(["Apache-2.0", "MIT", "BSD-3-Clause"]).toContain(e.licence);
    }
    expect(catalogueEntry(DEFAULT_DETECTOR)?.labels).toBe("coco");
  });

  it.skipIf(!model)("YOLOX-Nano's pin is the shared data's file, byte for byte", () => {
    const e = catalogueEntry("yolox-nano")!;
    expect(sha256Of(model!)).toBe(e.sha256);
    expect(statSync(model!).size).toBe(e.bytes);
  });
});

describe.skipIf(!model)("models fetch against a local HTTP server", () => {
  let dir: string;
  let server: Server;
  let base: string;
  const served = new Map<string, Buffer>();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-fetch-"));
    served.set("/yolox_nano.onnx", readFileSync(model!));
    const tampered = Buffer.from(readFileSync(model!));
    tampered[tampered.length - 10] = tampered[tampered.length - 10]! ^ 0xff;
    served.set("/tampered.onnx", tampered);
    server = createServer((req, res) => {
      const body = served.get(req.url ?? "");
      if (!body) {
        res.writeHead(404).end("not here");
        return;
      }
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("downloads, checks the sha256, adds the model and runs it on the still", async () => {
    const out = path.join(dir, "ok");
    const r = await runCli(["models", "fetch", "yolox-nano", "--url", `${base}/yolox_nano.onnx`, "--out", out, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      decoder: string;
      source: string;
      licence: string;
      manifest: string;
      trial: { objects: { label: string }[]; providers: { provider: string; ms?: number }[] };
    };
    expect(j).toMatchObject({ decoder: "yolox", source: "download", licence: "Apache-2.0", manifest: path.join(out, "manifest.json") });
    // The still's pickup and parked cars are there.
    expect(j.trial.objects.filter((o) => o.label === "car").length).toBeGreaterThanOrEqual(3);
    expect(j.trial.providers.find((p) => p.provider === "cpu")?.ms).toBeGreaterThan(0);
    const manifest = JSON.parse(readFileSync(j.manifest, "utf8")) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      id: "yolox-nano",
      domain: "coco",
      licence: "Apache-2.0",
      origin: { sha256: catalogueEntry("yolox-nano")!.sha256 },
    });
    expect((await checkModel(j.manifest)).problems).toEqual([]);
  }, 60_000);

  it("refuses a file that is not the pinned one, and leaves nothing behind", async () => {
    const out = path.join(dir, "tampered");
    const r = await runCli(["models", "fetch", "yolox-nano", "--url", `${base}/tampered.onnx`, "--out", out, "--no-run"]);
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(
      new RegExp(
        `cityedge models fetch: yolox-nano: ${base}/tampered\\.onnx: sha256 [0-9a-f]{64}, but yolox-nano is pinned at ${catalogueEntry("yolox-nano")!.sha256}: refusing a file that is not the catalogue's`,
      ),
    );
    expect(readdirSync(out)).toEqual([]);
  });

  it("says what failed when the download does, and how to do without it", async () => {
    const r = await runCli(["models", "fetch", "yolox-nano", "--url", `${base}/gone.onnx`, "--out", path.join(dir, "gone"), "--no-run"]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`download of ${base}/gone.onnx failed: HTTP 404 Not Found (offline? take the file from elsewhere with --from FILE)`);
  });

  it("--from FILE for offline devices, checked against the same pin", async () => {
    const out = path.join(dir, "from");
    const ok = await runCli(["models", "fetch", "yolox-nano", "--from", model!, "--out", out, "--no-run"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("fetched yolox-nano (from the file given, sha256 checked; licence Apache-2.0)");
    expect(existsSync(path.join(out, "yolox_nano.onnx"))).toBe(true);
    const wrong = path.join(dir, "wrong.onnx");
    writeFileSync(wrong, "not it");
    const bad = await runCli(["models", "fetch", "yolox-nano", "--from", wrong, "--out", path.join(dir, "from2"), "--no-run"]);
    expect(bad.code).toBe(65);
    expect(bad.stderr).toContain(`--from ${wrong}: sha256 ${sha256Of(wrong)}, but yolox-nano is pinned at`);
  });

  it("refuses a name it does not know, listing the ones it does", async () => {
    const r = await runCli(["models", "fetch", "yolov8n", "--no-run"]);
    expect(r.code).toBe(65);
    expect(r.stderr).toContain('no model "yolov8n" in the catalogue (known: yolox-nano)');
  });
});
