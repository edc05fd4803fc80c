import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

export interface FfmpegBinary {
  path: string;
  /** Where the path came from: the config, PATH, or the npm package. */
  origin: "config" | "path" | "npm";
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    // Not there or not executable: the caller tries the next candidate.
    return false;
  }
}

function onPath(name: string, envPath: string | undefined): string | undefined {
  for (const dir of (envPath ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const file = path.join(dir, name);
    if (executable(file)) return file;
  }
  return undefined;
}

function fromNpm(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require("@ffmpeg-installer/ffmpeg") as { path?: string };
    return pkg.path && executable(pkg.path) ? pkg.path : undefined;
  } catch {
    // The package has no binary for this platform (it throws): there is no npm ffmpeg here.
    return undefined;
  }
}

/**
 * Which ffmpeg the cameras run: the config's path, else `ffmpeg` on PATH, else the binary of
 * the @ffmpeg-installer/ffmpeg package (so a fresh `npm ci` always has one).
 */
export function resolveFfmpeg(configured?: string, envPath: string | undefined = process.env.PATH): FfmpegBinary {
  if (configured !== undefined) {
    if (!executable(configured)) throw new Error(`ffmpeg_path "${configured}" is not an executable file`);
    return { path: configured, origin: "config" };
  }
  const found = onPath("ffmpeg", envPath);
  if (found) return { path: found, origin: "path" };
  const npm = fromNpm();
  if (npm) return { path: npm, origin: "npm" };
  throw new Error("no ffmpeg found: set ffmpeg_path, put ffmpeg on PATH, or reinstall @ffmpeg-installer/ffmpeg (npm ci)");
}

/** What the camera drivers need to know about an ffmpeg build. */
export interface FfmpegCaps {
  /** First line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.9-0+deb12u1". */
  version: string;
  /** The RTSP socket I/O timeout option: `-timeout` since ffmpeg 5 (where it was the listen timeout before), `-stimeout` before. */
  rtspTimeoutOption: "-timeout" | "-stimeout";
}

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(new Error(`${bin} ${args.join(" ")} failed: ${err.message}`));
      else resolve(stdout);
    });
  });
}

const caps = new Map<string, Promise<FfmpegCaps>>();

/** Asks an ffmpeg binary for its version and options, once per binary. */
export function ffmpegCaps(bin: string): Promise<FfmpegCaps> {
  let c = caps.get(bin);
  if (!c) {
    c = (async () => {
      const version =
        (await run(bin, ["-hide_banner", "-version"]))
          .split("\n")[0]
          ?.replace(/\s+Copyright.*$/, "")
          .trim() ?? "unknown";
      const rtspHelp = await run(bin, ["-hide_banner", "-h", "demuxer=rtsp"]);
      const rtspTimeoutOption = /-timeout\s+\S+\s+\S+\s+set timeout \(in microseconds\) of socket/.test(rtspHelp) ? "-timeout" : "-stimeout";
      return { version, rtspTimeoutOption } satisfies FfmpegCaps;
    })();
    caps.set(bin, c);
    void c.catch(() => caps.delete(bin));
  }
  return c;
}
