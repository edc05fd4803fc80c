import type { AccessGuard } from "./access.js";
import { readBody, sendText } from "./respond.js";
import type { Route } from "./server.js";

const PAGE = (message: string, next: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cityedge: sign in</title>
<style>body{font:15px system-ui,sans-serif;background:#111820;color:#e6edf3;display:grid;place-items:center;height:100vh;margin:0}
form{background:#1b2530;padding:24px 28px;border-radius:8px;min-width:300px}input,button{font:inherit;padding:8px;margin-top:8px;width:100%;box-sizing:border-box}
p.err{color:#ff7b72}</style></head>
<body><form method="post" action="/login"><h1>cityedge</h1>${message ? `<p class="err">${message}</p>` : ""}
<label>Token<input type="password" name="token" autocomplete="current-password" autofocus required></label>
<input type="hidden" name="next" value="${next.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)}">
<button type="submit">Sign in</button></form></body></html>`;

/** Only local paths: a login must never send the browser to another site. */
const safeNext = (next: string | null | undefined): string => (next && /^\/(?![/\\])/.test(next) ? next : "/");

/**
 * The login page of token auth: the token typed once becomes an HttpOnly, SameSite=Strict
 * session cookie (derived from the token), which the console's requests and WebSockets carry.
 */
export function loginRoutes(access: AccessGuard): Route[] {
  return [
    {
      method: "GET",
      path: "/login",
      public: true,
      handle(_req, res, _p, url) {
        res
          .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
          .end(PAGE("", safeNext(url.searchParams.get("next"))));
      },
    },
    {
      method: "POST",
      path: "/login",
      public: true,
      async handle(req, res) {
        const form = new URLSearchParams((await readBody(req, 4096)).toString("utf8"));
        const next = safeNext(form.get("next"));
        if (!access.tokenMatches(form.get("token") ?? "")) {
          res.writeHead(401, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(PAGE("Wrong token.", next));
          return;
        }
        res.writeHead(303, { location: next, "set-cookie": access.sessionCookie(), "cache-control": "no-store" }).end();
      },
    },
    {
      method: "POST",
      path: "/logout",
      handle(_req, res) {
        sendText(res, 200, "signed out\n", { "set-cookie": "cityedge_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0" });
      },
    },
  ];
}
