import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { loadConfig } from "../runtime/config/load.js";
import type { HttpAuthConfig } from "../runtime/config/sections/http.js";
import { AccessGuard } from "../runtime/http/access.js";
import { HttpServer, type Route } from "../runtime/http/server.js";
import { Metrics } from "../runtime/metrics.js";
import { runCli } from "./helpers/cli.js";
import { configFiles } from "./helpers/configFiles.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-access-"));
const { write, problems } = configFiles(dir);

const TOKEN = "s3cret-token-0123456789";

describe("http auth in the config", () => {
  it("refuses a bind beyond loopback without auth, naming the key and the fix", () => {
    expect(problems("device_id: j1\nhttp:\n  host: 0.0.0.0\n")).toEqual([
      'F:3:3 http.host: "0.0.0.0" is reachable from other machines: set http.auth (a token, or a user and password, from ${env:NAME} or ${file:PATH})',
    ]);
    expect(problems("device_id: j1\n", { CITYEDGE__HTTP__HOST: "10.0.0.5" })).toEqual([
      'F:1:1 http.host: "10.0.0.5" is reachable from other machines: set http.auth (a token, or a user and password, from ${env:NAME} or ${file:PATH}) (set by environment variable CITYEDGE__HTTP__HOST)',
    ]);
  });

  it("refuses a token or password written in the file itself", () => {
    expect(problems(`device_id: j1\nhttp:\n  host: 0.0.0.0\n  auth:\n    token: ${TOKEN}\n`)).toEqual([
      "F:5:5 http.auth.token: must come from ${env:NAME} or ${file:PATH}, not be written in the config file",
    ]);
    expect(problems("device_id: j1\nhttp:\n  auth:\n    user: ops\n    password: hunter2hunter2\n")).toEqual([
      "F:5:5 http.auth.password: must come from ${env:NAME} or ${file:PATH}, not be written in the config file",
    ]);
  });

  it("checks what auth needs: user with password, a token long enough", () => {
    expect(problems("device_id: j1\nhttp:\n  auth:\n    user: ops\n")).toEqual([
      "F:4:5 http.auth.user: user and password go together for basic auth; set both or neither",
    ]);
    expect(problems("device_id: j1\nhttp:\n  auth:\n    token: ${env:T}\n", { T: "short" })).toEqual([
      // The value of a secret is never repeated in a message.
      "F:4:5 http.auth.token: must have at least 16 characters, got a secret of 5 characters",
    ]);
  });

  it("takes the secret from ${env:} or ${file:} and lists it for log scrubbing", () => {
    const tokenFile = path.join(dir, "token.txt");
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const fromFile = loadConfig(write(`device_id: j1\nhttp:\n  host: 0.0.0.0\n  auth:\n    token: \${file:${tokenFile}}\n`), {});
    expect(fromFile.config.http.auth?.token).toBe(TOKEN);
    expect(fromFile.secrets).toContain(TOKEN);
    const fromEnv = loadConfig(write("device_id: j1\nhttp:\n  host: 0.0.0.0\n  auth:\n    user: ops\n    password: ${env:PW}\n"), {
      PW: "correct-horse",
    });
    expect(fromEnv.config.http.auth).toEqual({ user: "ops", password: "correct-horse" });
    expect(fromEnv.secrets).toContain("correct-horse");
    // An environment override is as good as a reference.
    const overridden = loadConfig(write("device_id: j1\nhttp:\n  host: 0.0.0.0\n"), { CITYEDGE__HTTP__AUTH__TOKEN: TOKEN });
    expect(overridden.config.http.auth?.token).toBe(TOKEN);
  });

  it("check-config says so and exits 78", async () => {
    const r = await runCli(["check-config", write("device_id: j1\nhttp:\n  host: 0.0.0.0\n")]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/:3:3 http\.host: "0\.0\.0\.0" is reachable from other machines: set http\.auth/);
  });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(port: number, p: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: p, method: o.method ?? "GET", headers: o.headers ?? {} }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(o.body);
  });
}

/** Opens a WebSocket; resolves "open" or the HTTP status it was refused with. */
function tryWs(url: string, headers: Record<string, string> = {}): Promise<number | "open"> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on("open", () => {
      ws.close();
      resolve("open");
    });
    ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.on("error", () => resolve(0));
  });
}

describe("the HTTP endpoint's access guard", () => {
  let server: HttpServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function serve(host: string, auth?: HttpAuthConfig, allowedOrigins: string[] = []): Promise<number> {
    const wss = new WebSocketServer({ noServer: true });
    const routes: Route[] = [
      { method: "GET", path: "/", handle: (_q, res) => void res.writeHead(200, { "content-type": "text/html" }).end("<p>console</p>") },
      { method: "PUT", path: "/api/thing", handle: (_q, res) => void res.writeHead(200).end("changed") },
    ];
    server = new HttpServer({
      host,
      port: 0,
      log: pino({ level: "silent" }),
      metrics: new Metrics(),
      summary: () => ({ state: "ok" }) as never,
      access: new AccessGuard({ host, ...(auth ? { auth } : {}), allowedOrigins }),
      routes,
      upgrades: [{ path: "/live", handle: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.send("hi")) }],
    });
    await server.start();
    return server.port;
  }

  it("on loopback without auth serves this machine, but refuses other host names (DNS rebinding)", async () => {
    const port = await serve("127.0.0.1");
    expect((await send(port, "/")).status).toBe(200);
    expect((await send(port, "/", { headers: { host: `localhost:${port}` } })).status).toBe(200);
    const rebound = await send(port, "/", { headers: { host: `evil.example:${port}` } });
    expect(rebound.status).toBe(421);
    expect(rebound.body).toContain('host "evil.example:');
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, { host: `evil.example:${port}` })).toBe(421);
  });

  it("checks the Origin of WebSockets and of changes: its own and allowed origins only", async () => {
    const port = await serve("127.0.0.1", undefined, ["https://ops.example.net"]);
    const own = `http://127.0.0.1:${port}`;
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, { origin: own })).toBe("open");
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, { origin: "https://ops.example.net" })).toBe("open");
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, { origin: "https://attacker.example" })).toBe(403);
    // A client that is not a browser sends no Origin.
    expect(await tryWs(`ws://127.0.0.1:${port}/live`)).toBe("open");
    expect((await send(port, "/api/thing", { method: "PUT", headers: { origin: own } })).status).toBe(200);
    const forged = await send(port, "/api/thing", { method: "PUT", headers: { origin: "https://attacker.example" } });
    expect(forged.status).toBe(403);
    expect(forged.body).toContain('origin "https://attacker.example" is not allowed');
  });

  it("with a token: 401 without it, pages go to the login form, the login sets a session cookie", async () => {
    const port = await serve("0.0.0.0", { token: TOKEN });
    for (const p of ["/", "/healthz", "/metrics"]) {
      const r = await send(port, p);
      expect(r.status, p).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Bearer realm="cityedge"');
    }
    const page = await send(port, "/", { headers: { accept: "text/html" } });
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe("/login?next=%2F");
    expect((await send(port, "/login")).status).toBe(200);
    expect((await send(port, "/", { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await send(port, "/", { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
    expect(await tryWs(`ws://127.0.0.1:${port}/live`)).toBe(401);

    const form = { "content-type": "application/x-www-form-urlencoded" };
    const wrong = await send(port, "/login", { method: "POST", headers: form, body: "token=nope&next=%2F" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers["set-cookie"]).toBeUndefined();
    // A login may only send the browser to a page of this endpoint.
    const login = await send(port, "/login", { method: "POST", headers: form, body: `token=${TOKEN}&next=%2F%2Fevil.example` });
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe("/");
    const cookie = String(login.headers["set-cookie"]).split(";")[0]!;
    expect(String(login.headers["set-cookie"])).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
    expect((await send(port, "/", { headers: { cookie } })).status).toBe(200);
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, { cookie, origin: `http://127.0.0.1:${port}` })).toBe("open");
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, { cookie, origin: "https://attacker.example" })).toBe(403);
    // A forged cookie is no session.
    expect((await send(port, "/", { headers: { cookie: "cityedge_session=forged" } })).status).toBe(401);
  });

  it("with basic auth: the browser is asked for user and password", async () => {
    const port = await serve("0.0.0.0", { user: "ops", password: "correct-horse" });
    const none = await send(port, "/");
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Basic realm="cityedge", charset="UTF-8"');
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` });
    expect((await send(port, "/", { headers: basic("ops", "correct-horse") })).status).toBe(200);
    expect((await send(port, "/", { headers: basic("ops", "wrong") })).status).toBe(401);
    expect((await send(port, "/", { headers: basic("root", "correct-horse") })).status).toBe(401);
    expect(await tryWs(`ws://127.0.0.1:${port}/live`, basic("ops", "correct-horse"))).toBe("open");
    // Beyond loopback, the Host is not checked: the credentials are.
    expect((await send(port, "/", { headers: { ...basic("ops", "correct-horse"), host: "cabinet-7.city.example:9108" } })).status).toBe(200);
  });
});
