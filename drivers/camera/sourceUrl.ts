import { z } from "zod";
import { redactUrl } from "../../runtime/log/logger.js";

/**
 * A camera url of the given schemes with a host: messages never repeat a password (config
 * errors are printed and logged).
 */
export function networkUrl(schemes: readonly string[], description: string) {
  return z
    .string()
    .superRefine((url, ctx) => {
      const problem = networkUrlProblem(url, schemes);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .describe(description);
}

export function schemeOf(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
}

function networkUrlProblem(url: string, schemes: readonly string[]): string | undefined {
  const shown = `"${redactUrl(url)}"`;
  const scheme = schemeOf(url);
  if (scheme === undefined || !schemes.includes(scheme)) return `must be ${schemes.map((s) => `${s}://`).join(" or ")}…, got ${shown}`;
  if (/\s/.test(url)) return `must not contain spaces, got ${shown}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `is not a valid URL, got ${shown}`;
  }
  if (parsed.hostname === "") return `has no host, got ${shown}`;
  return undefined;
}
