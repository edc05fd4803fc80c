import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { Part, PartHealth } from "../part.js";
import { AccessGuard, type Refusal } from "./access.js";
import type { HealthSummary } from "./healthSummary.js";
import { loginRoutes } from "./login.js";
import { HttpError, sendText } from "./respond.js";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "DELETE";

/** One endpoint beyond /healthz and /metrics: an exact path or a pattern whose groups become `params`. */
export interface Route {
  method: Exclude<Method, "HEAD">;
  path: string | RegExp;
  /** Served without credentials (the login page). */
  public?: boolean;
  handle(req: IncomingMessage, res: ServerResponse, params: string[], url: URL): void | Promise<void>;
}

/** A WebSocket endpoint: gets the upgrade once the credentials and the Origin were checked. */
export interface UpgradeRoute {
  path: string | RegExp;
  handle(req: IncomingMessage, socket: Duplex, head: Buffer, params: string[], url: URL): void;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  metrics: Metrics;
  /** The current summary; /healthz answers 200 when its state is "ok", else 503. */
  summary: () => HealthSummary;
  /** Who may connect; default: loopback only, no credentials. */
  access?: AccessGuard;
  routes?: readonly Route[];
  upgrades?: readonly UpgradeRoute[];
  /** The routes include the web console at `/`: the listening line names its URL. */
  console?: boolean;
}

const PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The HTTP endpoint in health: its port (while it listens), how often /metrics was scraped, requests refused by the access guard. */
export type HttpHealth = PartHealth & { port?: number; scrapes: number; refused: number };

function match(pattern: string | RegExp, pathname: string): string[] | undefined {
  if (typeof pattern === "string") return pattern === pathname ? [] : undefined;
  const m = pattern.exec(pathname);
  if (!m) return undefined;
  try {
    return m.slice(1).map((g) => decodeURIComponent(g ?? ""));
  } catch {
    // A malformed escape in the path cannot name anything that exists.
    return undefined;
  }
}

/** Writes a refusal on a raw socket (an upgrade that will not be one) and closes it. */
function refuseSocket(socket: Duplex, r: Refusal): void {
  const text = { 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 421: "Misdirected Request" }[r.status] ?? "Error";
  const headers = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.end(`HTTP/1.1 ${r.status} ${text}\r\nconnection: close\r\ncontent-type: text/plain\r\n${headers.join("")}\r\n${r.reason}\n`);
}

/**
 * The device's HTTP endpoint: `/healthz` (JSON) and `/metrics` (Prometheus text) for probes and
 * scrapers, plus the routes and WebSockets other parts add (the web console). Every request
 * passes the {@link AccessGuard} first.
 */
export class HttpServer implements Part {
  readonly name = "http";
  readonly kind = "http";
  readonly #opts: HttpServerOptions;
  readonly #access: AccessGuard;
  readonly #routes: readonly Route[];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket | Duplex>();
  #error: string | undefined;
  #scrapes = 0;
  #refused = 0;

  constructor(opts: HttpServerOptions) {
    this.#opts = opts;
    this.#access = opts.access ?? new AccessGuard({ host: opts.host, allowedOrigins: [] });
    this.#routes = [...(this.#access.scheme === "token" ? loginRoutes(this.#access) : []), ...(opts.routes ?? [])];
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    // Probes must not keep a shutdown waiting.
    server.keepAliveTimeout = 2000;
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.once("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new Error(`http: cannot listen on ${this.#opts.host}:${this.#opts.port}: ${err.code ?? err.message}`));
      };
      server.once("error", onError);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (err) => {
      this.#error = err.message;
      this.#opts.log.error({ err }, "http server error");
    });
    this.#server = server;
    this.#opts.log.info(
      { url: this.url, auth: this.#access.scheme, routes: this.#routes.length, websockets: this.#opts.upgrades?.length ?? 0 },
      this.#opts.console ? `web console at ${this.url} (and /healthz, /metrics)` : `serving /healthz and /metrics at ${this.url}`,
    );
  }

  /** The port actually bound. */
  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? this.#opts.port;
  }

  /** The endpoint's URL, with a host a browser can open (a wildcard bind is reached as 127.0.0.1 here). */
  get url(): string {
    const h = this.#opts.host;
    const host = h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h.includes(":") ? `[${h}]` : h;
    return `http://${host}:${this.port}/`;
  }

  #refuse(req: IncomingMessage, res: ServerResponse, r: Refusal): void {
    this.#refused++;
    this.#opts.log.debug({ path: req.url, status: r.status, reason: r.reason, from: req.socket.remoteAddress }, "http request refused");
    // A person at a browser in token mode is sent to the login page rather than shown a bare 401.
    const html = (req.headers.accept ?? "").includes("text/html");
    if (r.status === 401 && this.#access.scheme === "token" && html && req.method === "GET") {
      res.writeHead(303, { location: `/login?next=${encodeURIComponent(req.url ?? "/")}` }).end();
      return;
    }
    sendText(res, r.status, `${r.reason}\n`, r.headers);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = (req.method ?? "GET") as Method;
    try {
      const found = this.#find(method, url.pathname);
      const refusal = this.#access.check(req);
      if (refusal && !(refusal.status === 401 && found?.route.public)) return this.#refuse(req, res, refusal);
      if (method !== "GET" && method !== "HEAD") {
        const origin = this.#access.originProblem(req);
        if (origin) return this.#refuse(req, res, origin);
      }
      if (url.pathname === "/healthz" && (method === "GET" || method === "HEAD")) {
        const summary = this.#opts.summary();
        const body = `${JSON.stringify(summary)}\n`;
        res.writeHead(summary.state === "ok" ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(method === "HEAD" ? undefined : body);
        return;
      }
      if (url.pathname === "/metrics" && (method === "GET" || method === "HEAD")) {
        this.#scrapes++;
        const text = await this.#opts.metrics.render();
        res.writeHead(200, { "content-type": PROM_TYPE, "cache-control": "no-store" });
        res.end(method === "HEAD" ? undefined : text);
        return;
      }
      if (found) {
        await found.route.handle(req, res, found.params, url);
        return;
      }
      const allowed = this.#allowedMethods(url.pathname);
      if (allowed.length > 0) {
        sendText(res, 405, "method not allowed\n", { allow: allowed.join(", ") });
        return;
      }
      sendText(res, 404, `not found: ${url.pathname}\n`);
    } catch (err) {
      if (err instanceof HttpError) {
        if (!res.headersSent) sendText(res, err.status, `${err.message}\n`);
        else res.end();
        return;
      }
      this.#opts.log.error({ err, path: url.pathname }, "http handler failed");
      if (!res.headersSent) sendText(res, 500, `internal error: ${(err as Error).message}\n`);
      else res.end();
    }
  }

  #find(method: Method, pathname: string): { route: Route; params: string[] } | undefined {
    const m = method === "HEAD" ? "GET" : method;
    for (const route of this.#routes) {
      if (route.method !== m) continue;
      const params = match(route.path, pathname);
      if (params) return { route, params };
    }
    return undefined;
  }

  #allowedMethods(pathname: string): string[] {
    const builtIn = pathname === "/healthz" || pathname === "/metrics" ? ["GET", "HEAD"] : [];
    const routed = this.#routes.filter((r) => match(r.path, pathname)).map((r) => r.method);
    return [...new Set([...builtIn, ...routed, ...(routed.includes("GET") ? ["HEAD"] : [])])];
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", (err) => this.#opts.log.debug({ err: err.message }, "websocket socket error"));
    const url = new URL(req.url ?? "/", "http://localhost");
    const refusal = this.#access.check(req) ?? this.#access.originProblem(req);
    if (refusal) {
      this.#refused++;
      this.#opts.log.warn(
        { path: url.pathname, status: refusal.status, reason: refusal.reason, from: req.socket.remoteAddress },
        "websocket refused",
      );
      refuseSocket(socket, refusal);
      return;
    }
    for (const u of this.#opts.upgrades ?? []) {
      const params = match(u.path, url.pathname);
      if (params) {
        u.handle(req, socket, head, params, url);
        return;
      }
    }
    refuseSocket(socket, { status: 404, headers: {}, reason: `no websocket at ${url.pathname}` });
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      // Upgraded sockets (WebSockets) are no longer the server's connections: end them too.
      for (const s of this.#sockets) s.destroy();
    });
  }

  health(): HttpHealth {
    if (this.#error) return { state: "degraded", error: this.#error, scrapes: this.#scrapes, refused: this.#refused };
    return { state: this.#server ? "running" : "stopped", port: this.port, scrapes: this.#scrapes, refused: this.#refused };
  }
}
