import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isLoopbackHost, type HttpAuthConfig } from "../config/sections/http.js";

export interface AccessOptions {
  /** The bind address: on loopback, requests must name a loopback host (no DNS rebinding). */
  host: string;
  auth?: HttpAuthConfig;
  /** Origins besides the endpoint's own that may open WebSockets and send changes. */
  allowedOrigins: readonly string[];
}

/** Why a request is refused: the status, headers and a one-line reason. */
export interface Refusal {
  status: number;
  headers: Record<string, string>;
  reason: string;
}

export const SESSION_COOKIE = "cityedge_session";

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();
/** Compares through fixed-length digests, so neither the content nor the length leaks through timing. */
const same = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Who may use the HTTP endpoint. Bound to loopback with no auth configured, anyone on this
 * machine, but only through a loopback host name (a page on another site whose name resolves to
 * 127.0.0.1 is refused). With auth configured: a bearer token, basic auth, or the session cookie
 * the login page sets. WebSockets and changes must also come from the endpoint's own origin or
 * an allowed one, so a page elsewhere cannot act with the browser's credentials.
 */
export class AccessGuard {
  readonly #o: AccessOptions;
  readonly #loopback: boolean;
  readonly #session: string | undefined;

  constructor(o: AccessOptions) {
    this.#o = o;
    this.#loopback = isLoopbackHost(o.host);
    const secret = o.auth?.token ?? o.auth?.password;
    // The cookie is derived from the secret: it survives restarts and dies when the secret changes.
    this.#session = secret !== undefined ? createHmac("sha256", secret).update("cityedge console session").digest("base64url") : undefined;
  }

  /** Whether requests need credentials. */
  get authRequired(): boolean {
    return this.#o.auth !== undefined;
  }

  /** "token" when the login page takes a token, "basic" when the browser asks for user and password. */
  get scheme(): "token" | "basic" | "none" {
    const a = this.#o.auth;
    return a === undefined ? "none" : a.token !== undefined ? "token" : "basic";
  }

  /** Checks the Host header and the credentials of any request; undefined when it may proceed. */
  check(req: IncomingMessage): Refusal | undefined {
    const host = this.#hostProblem(req);
    if (host) return host;
    if (!this.authRequired || this.authenticated(req)) return undefined;
    const basic = this.#o.auth?.password !== undefined;
    return {
      status: 401,
      headers: basic ? { "www-authenticate": 'Basic realm="cityedge", charset="UTF-8"' } : { "www-authenticate": 'Bearer realm="cityedge"' },
      reason: "authentication required",
    };
  }

  /** Whether the request carries valid credentials (always true when none are configured). */
  authenticated(req: IncomingMessage): boolean {
    const a = this.#o.auth;
    if (!a) return true;
    const header = req.headers.authorization ?? "";
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (bearer !== undefined && a.token !== undefined && same(bearer, a.token)) return true;
    const basic = /^Basic\s+(\S+)$/i.exec(header)?.[1];
    if (basic !== undefined && a.user !== undefined && a.password !== undefined) {
      const text = Buffer.from(basic, "base64").toString("utf8");
      const colon = text.indexOf(":");
      // Both compared, always, so a wrong user takes as long as a wrong password.
      if (colon >= 0 && [same(text.slice(0, colon), a.user), same(text.slice(colon + 1), a.password)].every(Boolean)) return true;
    }
    const session = cookie(req, SESSION_COOKIE);
    return session !== undefined && this.#session !== undefined && same(session, this.#session);
  }

  /** Whether `token` is the configured token (the login page's check). */
  tokenMatches(token: string): boolean {
    const t = this.#o.auth?.token;
    return t !== undefined && same(token, t);
  }

  /** The Set-Cookie value the login page answers with. */
  sessionCookie(): string {
    return `${SESSION_COOKIE}=${this.#session ?? ""}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /**
   * For WebSocket upgrades and requests that change something: the Origin a browser sends must
   * be this endpoint's own (same host and port as the request's Host) or an allowed one. Clients
   * that send no Origin are not browsers and cannot carry a victim's cookies.
   */
  originProblem(req: IncomingMessage): Refusal | undefined {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    const host = req.headers.host;
    const own = host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
    if (own || this.#o.allowedOrigins.includes(origin)) return undefined;
    return {
      status: 403,
      headers: {},
      reason: `origin ${JSON.stringify(origin)} is not allowed (allowed: this endpoint's own, http.allowed_origins)`,
    };
  }

  #hostProblem(req: IncomingMessage): Refusal | undefined {
    if (!this.#loopback) return undefined;
    const host = req.headers.host ?? "";
    const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
    if (isLoopbackHost(name)) return undefined;
    return {
      status: 421,
      headers: {},
      reason: `host ${JSON.stringify(host)} is not this endpoint (bound to loopback: use 127.0.0.1, localhost or [::1])`,
    };
  }
}
