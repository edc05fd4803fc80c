import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { Part, PartHealth } from "../part.js";
import type { HealthSummary } from "./healthSummary.js";

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  metrics: Metrics;
  /** The current summary; /healthz answers 200 when its state is "ok", else 503. */
  summary: () => HealthSummary;
}

const PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The HTTP endpoint in health: its port (while it listens) and how often /metrics was scraped. */
export type HttpHealth = PartHealth & { port?: number; scrapes: number };

/** Serves `/healthz` (JSON) and `/metrics` (Prometheus text) for local probes and scrapers. */
export class HttpServer implements Part {
  readonly name = "http";
  readonly kind = "http";
  readonly #opts: HttpServerOptions;
  #server: Server | undefined;
  #error: string | undefined;
  #scrapes: number = 0;

  constructor(opts: HttpServerOptions) {
    this.#opts = opts;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.#handle(req, res));
    // Probes must not keep a shutdown waiting.
    server.keepAliveTimeout = 2000;
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
    this.#opts.log.info({ url: `http://${this.#opts.host}:${this.port}` }, "serving /healthz and /metrics");
  }

  /** The port actually bound. */
  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? this.#opts.port;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.#respond(req, res).catch((err: unknown) => this.#failed(err, req, res));
  }

  #failed(err: unknown, req: IncomingMessage, res: ServerResponse): void {
    this.#opts.log.error({ err, path: req.url }, "http handler failed");
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end(`internal error: ${(err as Error).message}\n`);
  }

  async #respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (url.pathname === "/healthz") {
      const summary = this.#opts.summary();
      const body = `${JSON.stringify(summary)}\n`;
      res.writeHead(summary.state === "ok" ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    } else if (url.pathname === "/metrics") {
      this.#scrapes++;
      const text = await this.#opts.metrics.render();
      res.writeHead(200, { "content-type": PROM_TYPE, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : text);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${url.pathname} (try /healthz or /metrics)\n`);
    }
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  health(): HttpHealth {
    if (this.#error) return { state: "degraded", error: this.#error, scrapes: this.#scrapes };
    return { state: this.#server ? "running" : "stopped", port: this.port, scrapes: this.#scrapes };
  }
}
