import { readFileSync } from "node:fs";
import path from "node:path";
import type { IClientOptions } from "mqtt";
import type { Config } from "../config/schema.js";

const PEM = /^-----BEGIN /;

/**
 * A TLS setting is a path (relative to the config file) or, through ${file:...} or ${env:...},
 * the PEM itself. A value that came from a reference may be key material in another form (base64
 * DER): it is never repeated in a message as if it were a path.
 */
function pem(key: string, value: string | undefined, baseDir: string, fromReference: boolean): Buffer | undefined {
  if (value === undefined) return undefined;
  if (PEM.test(value.trimStart())) return Buffer.from(value);
  const file = path.resolve(baseDir, value);
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    if (fromReference) {
      const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
      throw new Error(
        `mqtt.tls.${key}: the value of its \${env:} or \${file:} reference is neither PEM text (starting "-----BEGIN ") nor the path of a readable file (${code}); not shown, it may be key material`,
        { cause: err },
      );
    }
    throw new Error(`mqtt.tls.${key}: cannot read "${file}": ${(err as Error).message}`, { cause: err });
  }
  if (!PEM.test(text.toString("latin1", 0, 64).trimStart()))
    throw new Error(`mqtt.tls.${key}: "${file}" is not a PEM file (it does not start with "-----BEGIN ")`);
  return text;
}

export interface Will {
  topic: string;
  payload: string;
}

/**
 * MQTT.js options from the config. Reconnecting is ours (capped, jittered backoff), so MQTT.js's
 * own reconnect is off; TLS material is read here so that a missing file fails the part at start.
 */
export function clientOptions(
  cfg: Config["mqtt"],
  deviceId: string,
  baseDir: string,
  will: Will,
  referenced: readonly string[] = [],
): IClientOptions {
  const fromReference = (key: string): boolean => referenced.includes(`mqtt.tls.${key}`);
  const tls = cfg.tls;
  const opts: IClientOptions = {
    protocolVersion: cfg.protocol_version,
    clientId: cfg.client_id ?? `cityedge-${deviceId}`,
    clean: true,
    keepalive: cfg.keepalive_s,
    // Ping on schedule even while publishing: on a silently dead link only an unanswered ping tells.
    reschedulePings: false,
    connectTimeout: cfg.connect_timeout_ms,
    reconnectPeriod: 0,
    resubscribe: false,
    will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true },
  };
  if (cfg.username !== undefined) opts.username = cfg.username;
  if (cfg.password !== undefined) opts.password = cfg.password;
  if (tls) {
    const ca = pem("ca", tls.ca, baseDir, fromReference("ca"));
    const cert = pem("cert", tls.cert, baseDir, fromReference("cert"));
    const key = pem("key", tls.key, baseDir, fromReference("key"));
    if (ca) opts.ca = ca;
    if (cert) opts.cert = cert;
    if (key) opts.key = key;
    if (tls.servername !== undefined) opts.servername = tls.servername;
    opts.rejectUnauthorized = tls.reject_unauthorized;
  }
  return opts;
}

/** A hint for the errors an operator meets when TLS or the broker refuses us. */
export function explainConnectError(err: Error & { code?: unknown }): string {
  const code = typeof err.code === "string" ? err.code : "";
  const msg = err.message;
  if (
    /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_|ERR_TLS_CERT_ALTNAME/.test(code) ||
    (/self[- ]signed|unable to verify|certificate/i.test(msg) && !/alert/i.test(msg))
  ) {
    return "the broker's certificate is not trusted by mqtt.tls.ca (wrong CA, or a host name mismatch); refusing to connect";
  }
  if (/alert certificate required|alert handshake failure|alert bad certificate|alert unknown ca|certificate required/i.test(msg)) {
    return "the broker refused our client certificate (missing or not signed by a CA it trusts): check mqtt.tls.cert and mqtt.tls.key";
  }
  if (/wrong version number|packet length too long|EPROTO/i.test(msg + code))
    return "TLS handshake failed: is the URL's port a TLS port (mqtts://) of the broker?";
  if (code === "ECONNREFUSED") return "connection refused: is the broker running and listening at mqtt.url?";
  if (/Not authorized|Bad User Name or Password|bad user|not authorized/i.test(msg))
    return "the broker refused our credentials (mqtt.username / mqtt.password)";
  return "connection failed";
}
