import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Logger } from "../log/logger.js";
import { redactUrl } from "../log/logger.js";

export interface DownloadOptions {
  maxBytes: number;
  timeoutMs: number;
  log: Logger;
  /** Least time between two progress lines in the log. */
  progressEveryMs?: number;
  /** Aborts the download (the daemon is stopping). */
  signal?: AbortSignal;
}

export interface Downloaded {
  bytes: number;
  sha256: string;
}

/**
 * Streams `url` into `dest`, hashing as it goes, refusing more than `maxBytes`, and logging
 * progress. On any failure the partial file is removed and the error names the URL (without
 * credentials) and the reason.
 */
export async function download(url: string, dest: string, opts: DownloadOptions): Promise<Downloaded> {
  const shown = redactUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`download: "${shown}" is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new Error(`download: ${shown}: only http:// and https:// are supported, got ${parsed.protocol}`);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    const res = await fetch(url, { signal, redirect: "follow" });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > opts.maxBytes)
      throw new Error(`${declared} bytes is over the limit of ${opts.maxBytes} (commands.model_update.max_bytes)`);
    const total = Number.isFinite(declared) ? declared : undefined;
    opts.log.info({ url: shown, bytes: total ?? null }, "model download started");
    const out = createWriteStream(dest, { flags: "wx", mode: 0o640 });
    const closed = new Promise<void>((resolve, reject) => {
      out.on("close", resolve);
      out.on("error", reject);
    });
    let lastLog = Date.now();
    const every = opts.progressEveryMs ?? 2000;
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        if (bytes > opts.maxBytes) throw new Error(`more than ${opts.maxBytes} bytes (commands.model_update.max_bytes)`);
        hash.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", resolve));
        if (Date.now() - lastLog >= every) {
          lastLog = Date.now();
          opts.log.info(
            { url: shown, bytes, total: total ?? null, percent: total ? Math.floor((100 * bytes) / total) : null },
            "model download progress",
          );
        }
      }
    } finally {
      out.end();
      await closed;
    }
  } catch (err) {
    await rm(dest, { force: true });
    const why = timeout.aborted
      ? `took longer than ${opts.timeoutMs} ms (commands.model_update.download_timeout_ms)`
      : opts.signal?.aborted
        ? "the daemon is stopping"
        : (err as Error).message;
    throw new Error(`download of ${shown} failed: ${why}`);
  }
  const sha256 = hash.digest("hex");
  opts.log.info({ url: shown, bytes, sha256, percent: 100 }, "model download complete");
  return { bytes, sha256 };
}
