import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { formatBytes, freeBytes } from "../disk/storageErrors.js";
import type { Logger } from "../log/logger.js";
import { redactUrl } from "../log/logger.js";
import { guardedLookup, isNonPublicAddress, urlProblem, type UrlPolicy } from "./urlPolicy.js";

export interface DownloadOptions {
  maxBytes: number;
  timeoutMs: number;
  log: Logger;
  /** Where downloads may come from; default: http and https, any host, private addresses allowed (tools, tests). */
  policy?: UrlPolicy;
  /** Free space the download must leave on the disk (checked before and while it runs); default 0. */
  minFreeBytes?: number;
  /** Least time between two progress lines in the log. */
  progressEveryMs?: number;
  /** Aborts the download (the daemon is stopping). */
  signal?: AbortSignal;
}

export interface Downloaded {
  bytes: number;
  sha256: string;
}

const OPEN_POLICY: UrlPolicy = { schemes: ["http", "https"], allowPrivate: true };
const MAX_REDIRECTS = 5;
/** How often (in bytes written) the free space is looked at again during a download. */
const FREE_CHECK_EVERY = 4 * 1024 * 1024;

/** One GET; resolves with the response once its headers are in. */
function get(url: URL, policy: UrlPolicy, signal: AbortSignal): Promise<IncomingMessage> {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", signal, lookup: guardedLookup(policy), headers: { "user-agent": "cityedge", accept: "*/*" } }, resolve);
    req.on("error", reject);
    req.end();
  });
}

/**
 * Streams `url` into `dest`, hashing as it goes. Refused before a byte is written: a URL the
 * policy does not allow (scheme, host, credentials, a name or address that is loopback,
 * link-local or private, also after each redirect and for the address actually connected to), a
 * declared size over `maxBytes`, a file that would leave less than `minFreeBytes` free. Cut short:
 * more than `maxBytes`, the disk filling up, the timeout, the signal. On any failure the partial
 * file is removed and the error names the URL (without credentials) and the reason.
 */
export async function download(url: string, dest: string, opts: DownloadOptions): Promise<Downloaded> {
  const shown = redactUrl(url);
  const policy = opts.policy ?? OPEN_POLICY;
  let current: URL;
  try {
    current = new URL(url);
  } catch {
    throw new Error(`download: "${shown}" is not a URL`);
  }
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const hash = createHash("sha256");
  const minFree = opts.minFreeBytes ?? 0;
  const dir = path.dirname(dest);
  let bytes = 0;
  let wrote = false;
  try {
    let res: IncomingMessage;
    for (let hop = 0; ; hop++) {
      const problem = urlProblem(current, policy);
      if (problem) throw new Error(hop === 0 ? problem : `redirected to ${redactUrl(current.href)}: ${problem}`);
      res = await get(current, policy, signal);
      const peer = res.socket.remoteAddress;
      if (!policy.allowPrivate && peer !== undefined && isNonPublicAddress(peer)) {
        res.destroy();
        throw new Error(`connected to ${peer}, a loopback, link-local or private address (commands.model_update.allow_private_addresses is false)`);
      }
      const location = res.headers.location;
      if (res.statusCode !== undefined && res.statusCode >= 300 && res.statusCode < 400 && location !== undefined) {
        res.resume();
        if (hop >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
        current = new URL(location, current);
        continue;
      }
      break;
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trimEnd());
    }
    const declared = Number(res.headers["content-length"] ?? NaN);
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      res.destroy();
      throw new Error(`${declared} bytes is over the limit of ${opts.maxBytes} (commands.model_update.max_bytes)`);
    }
    const total = Number.isFinite(declared) ? declared : undefined;
    const free = freeBytes(dir);
    if (free !== undefined && free < (total ?? 0) + minFree) {
      res.destroy();
      throw new Error(
        `not enough free disk space on ${dir}: ${formatBytes(free)} free, ${total !== undefined ? `${formatBytes(total)} for the file and ` : ""}${formatBytes(minFree)} to keep free (commands.model_update.min_free_bytes)`,
      );
    }
    opts.log.info({ url: shown, bytes: total ?? null }, "model download started");
    let lastLog = Date.now();
    let nextFreeCheck = FREE_CHECK_EVERY;
    const every = opts.progressEveryMs ?? 2000;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > opts.maxBytes) {
          done(new Error(`more than ${opts.maxBytes} bytes (commands.model_update.max_bytes)`));
          return;
        }
        if (bytes >= nextFreeCheck) {
          nextFreeCheck = bytes + FREE_CHECK_EVERY;
          const left = freeBytes(dir);
          if (left !== undefined && left < minFree) {
            done(new Error(`the disk is filling up: ${formatBytes(left)} left on ${dir}, less than commands.model_update.min_free_bytes`));
            return;
          }
        }
        hash.update(chunk);
        if (Date.now() - lastLog >= every) {
          lastLog = Date.now();
          opts.log.info(
            { url: shown, bytes, total: total ?? null, percent: total ? Math.floor((100 * bytes) / total) : null },
            "model download progress",
          );
        }
        done(null, chunk);
      },
    });
    wrote = true;
    // One pipeline: an error anywhere (the socket, the limit, ENOSPC on the file) rejects here, once.
    await pipeline(res, meter, createWriteStream(dest, { flags: "wx", mode: 0o640 }), { signal });
  } catch (err) {
    if (wrote) await rm(dest, { force: true });
    const why = timeout.aborted
      ? `took longer than ${opts.timeoutMs} ms (commands.model_update.download_timeout_ms)`
      : opts.signal?.aborted
        ? "the daemon is stopping"
        : (err as NodeJS.ErrnoException).code === "ENOSPC"
          ? `disk full while writing ${dest}`
          : (err as Error).message;
    throw new Error(`download of ${shown} failed: ${why}`);
  }
  const sha256 = hash.digest("hex");
  opts.log.info({ url: shown, bytes, sha256, percent: 100 }, "model download complete");
  return { bytes, sha256 };
}
