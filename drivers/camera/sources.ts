import { FILE_SOURCE } from "./fileSource.js";
import { HTTP_SOURCE } from "./httpSource.js";
import { RTSP_SOURCE } from "./rtspSource.js";
import { V4L2_SOURCE } from "./v4l2Source.js";

/**
 * Every kind of camera source, one line each. The config union (`cameras[].source`), the check of
 * a bare url and `createSource` are built from this list; a new kind is its file plus a line here.
 */
export const SOURCE_KINDS = [RTSP_SOURCE, HTTP_SOURCE, FILE_SOURCE, V4L2_SOURCE] as const;

export type SourceKind = (typeof SOURCE_KINDS)[number];
export type SourceKindName = SourceKind["kind"];

/** The kind whose url a camera without `source:` gives. */
export function kindOfUrl(url: string): SourceKind | undefined {
  return SOURCE_KINDS.find((k) => k.claims(url));
}

/** Why no kind takes a url given without `source:` (the url is not repeated with its password). */
export function unclaimedUrlProblem(url: string, shown: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    const schemes = SOURCE_KINDS.flatMap((k) => k.schemes);
    const others = SOURCE_KINDS.filter((k) => k.schemes.length === 0).map((k) => `a ${k.forms} device`);
    return `unknown scheme "${scheme}" (known: ${[...schemes, ...others.map((o) => `or ${o}`)].join(", ")}), got ${shown}`;
  }
  const forms = SOURCE_KINDS.map((k) => k.forms);
  return `must be ${forms.slice(0, -1).join(", ")} or ${forms[forms.length - 1]!}, got ${shown}`;
}
