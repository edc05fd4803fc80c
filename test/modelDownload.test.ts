/**
 * Model downloads against a local HTTP server: a download that fills the disk (a real tmpfs), a
 * declared size larger than the free space, and the staging files an interrupted update leaves.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { download } from "../runtime/modelUpdate/download.js";
import { ModelStore } from "../runtime/modelUpdate/store.js";
import { mountTmpfs, type Tmpfs } from "./helpers/tmpfs.js";

const log = pino({ level: "silent" });
let server: Server;
let base: string;
let root: string;
let fs: Tmpfs | string;
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown) => unhandled.push(r);

describe("model downloads on a small disk", () => {
  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    server = createServer((req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 1);
      // 10 MiB, streamed without a length (the size is only known at the end), or with one.
      if (req.url === "/declared.onnx") res.writeHead(200, { "content-length": String(160 * chunk.length) });
      else res.writeHead(200);
      let n = 0;
      const more = () => {
        while (n < 160) {
          n++;
          if (!res.write(chunk)) {
            res.once("drain", more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    root = mkdtempSync(path.join(os.tmpdir(), "cityedge-dl-"));
    fs = mountTmpfs(path.join(root, "data"), "2m");
  });

  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    if (typeof fs !== "string") fs.unmount();
    rmSync(root, { recursive: true, force: true });
  });

  it("a download that fills the disk fails with a clear error, removes its partial file and rejects nothing unhandled", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const dest = path.join(fs.dir, "m.part");
    await expect(download(`${base}/stream.onnx`, dest, { maxBytes: 1e9, timeoutMs: 10_000, log })).rejects.toThrow(
      `download of ${base}/stream.onnx failed: disk full while writing ${dest}`,
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(readdirSync(fs.dir)).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it("checks the free space against the declared size before writing a byte", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const dest = path.join(fs.dir, "m.part");
    await expect(download(`${base}/declared.onnx`, dest, { maxBytes: 1e9, timeoutMs: 10_000, log, minFreeBytes: 64 * 1024 })).rejects.toThrow(
      /failed: not enough free disk space on .*: 2\.0 MiB free, 10\.0 MiB for the file and 64\.0 KiB to keep free \(commands\.model_update\.min_free_bytes\)$/,
    );
    expect(readdirSync(fs.dir)).toEqual([]);
  });

  it("removes the downloads an interrupted update left in staging", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-staging-"));
    try {
      mkdirSync(path.join(dir, "models/vehicles/staging"), { recursive: true });
      mkdirSync(path.join(dir, "models/vehicles/versions"), { recursive: true });
      writeFileSync(path.join(dir, "models/vehicles/staging/1-ab.part"), "x");
      writeFileSync(path.join(dir, "models/vehicles/versions/keep.onnx"), "x");
      const removed = new ModelStore(dir).cleanStaging();
      expect(removed).toEqual([path.join(dir, "models/vehicles/staging/1-ab.part")]);
      expect(readdirSync(path.join(dir, "models/vehicles/versions"))).toEqual(["keep.onnx"]);
      expect(new ModelStore(path.join(dir, "nowhere")).cleanStaging()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
