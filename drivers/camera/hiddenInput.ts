import { mkdirSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { urlSecrets } from "../../runtime/log/logger.js";
import type { FfmpegCaps } from "./ffmpegBinary.js";
import type { CameraSource } from "./source.js";
import { sweepDeadProcessFiles } from "./staleFiles.js";

/** ffmpeg's input arguments for one run, and what to remove once the run is over. */
export interface CameraInput {
  args: string[];
  /** Removes the run's input file, if one was written; safe to call twice. */
  release(this: void): void;
}

/** The protocols an ffconcat file may lead ffmpeg to: the file itself and every network camera's. */
const CONCAT_PROTOCOLS = "file,rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto";
const NAME = /^cityedge-(\d+)-\d+-[a-z0-9]+\.ffconcat$/;
let serial = 0;
const swept = new Set<string>();

/** A token as ffconcat reads it: in single quotes, a quote inside written as '\''. */
function quote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** Input files a killed daemon left behind in `dir` (they hold credentials): those of processes that are gone. */
export function sweepStaleInputs(dir: string): string[] {
  return sweepDeadProcessFiles(dir, NAME);
}

/**
 * The input of one ffmpeg run. A url with credentials stays off ffmpeg's command line (which
 * every local user can read with `ps`) wherever the source can say its input as ffconcat: the url
 * and its options go into a 0600 file in `runDir` (made 0700), ffmpeg reads that file through the
 * concat demuxer, and the file is removed when the run is over. Sources that cannot (an HTTP
 * snapshot camera, read by image2) keep their url in the arguments; see docs/operations.md.
 */
export function cameraInput(source: CameraSource, caps: FfmpegCaps, runDir = os.tmpdir()): CameraInput {
  const spec = source.concatInput?.(caps);
  if (!spec || urlSecrets(spec.url).length === 0) return { args: source.inputArgs(caps), release: () => undefined };
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  if (!swept.has(runDir)) {
    swept.add(runDir);
    sweepStaleInputs(runDir);
  }
  const file = path.join(runDir, `cityedge-${process.pid}-${++serial}-${Math.random().toString(36).slice(2, 8)}.ffconcat`);
  const lines = ["ffconcat version 1.0", `file ${quote(spec.url)}`, ...spec.options.map(([k, v]) => `option ${k} ${quote(v)}`)];
  writeFileSync(file, `${lines.join("\n")}\n`, { mode: 0o600, flag: "wx" });
  let released = false;
  return {
    args: ["-f", "concat", "-safe", "0", "-protocol_whitelist", CONCAT_PROTOCOLS, "-i", file],
    release: () => {
      if (released) return;
      released = true;
      try {
        unlinkSync(file);
      } catch {
        // already gone (a sweep of a daemon that shares the folder)
      }
    },
  };
}
