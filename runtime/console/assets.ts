import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sendText } from "../http/respond.js";
import type { Route } from "../http/server.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};

/** The folder `npm run build` writes the console's page, script and styles to: dist/console at the package root. */
export function consoleAssetsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, "package.json"))) return path.join(dir, "dist", "console");
    dir = path.dirname(dir);
  }
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../console");
}

/** The built files of the console, read once; a missing build is answered with how to make it. */
export function assetRoutes(dir: string): Route[] {
  const cache = new Map<string, { body: Buffer; type: string; etag: string }>();
  const load = (name: string) => {
    const file = path.join(dir, name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) return undefined;
    const etag = `"${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`;
    const hit = cache.get(name);
    if (hit?.etag === etag) return hit;
    const entry = { body: readFileSync(file), type: TYPES[path.extname(name)] ?? "application/octet-stream", etag };
    cache.set(name, entry);
    return entry;
  };
  const serve = (name: string): Route["handle"] => {
    return (req, res) => {
      const a = load(name);
      if (!a) {
        sendText(res, 503, `the console is not built (${path.join(dir, name)} is missing): run npm run build\n`);
        return;
      }
      if (req.headers["if-none-match"] === a.etag) {
        res.writeHead(304, { etag: a.etag }).end();
        return;
      }
      res
        .writeHead(200, {
          "content-type": a.type,
          "content-length": a.body.length,
          etag: a.etag,
          "cache-control": "no-cache",
          "x-content-type-options": "nosniff",
          ...(a.type.startsWith("text/html")
            ? { "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'" }
            : {}),
        })
        .end(req.method === "HEAD" ? undefined : a.body);
    };
  };
  return [
    { method: "GET", path: "/", handle: serve("index.html") },
    {
      method: "GET",
      path: /^\/console\/([a-z0-9_.-]+\.(?:js|css|svg|map))$/,
      handle: (req, res, [name]) => serve(name!)(req, res, [], new URL("http://x")),
    },
  ];
}
