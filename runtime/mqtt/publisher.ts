import { randomUUID } from "node:crypto";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Config } from "../config/schema.js";
import { statusMessage, type StatusState } from "../contract/index.js";
import { normalizeUserInfo, redactUrl, type Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { Outbox } from "../outbox/outbox.js";
import type { Part, PartHealth } from "../part.js";
import { Backoff } from "../supervise/backoff.js";
import { PortKnocker } from "../supervise/portKnock.js";
import { clientOptions, explainConnectError } from "./clientOptions.js";
import type { Topics } from "./topics.js";

export type { StatusState };

export interface PublisherOptions {
  mqtt: Config["mqtt"];
  deviceId: string;
  /** Directory that relative TLS paths are resolved from (the config file's). */
  baseDir: string;
  /** Config key paths whose value came from a reference (TLS material that is never shown as a path). */
  referenced?: readonly string[];
  topics: Topics;
  outbox: Outbox;
  /** Most messages handed to MQTT and not yet acknowledged. */
  inflight: number;
  log: Logger;
  metrics?: Metrics;
  /** How long stop() waits for the outbox to drain before it publishes `stopped`. */
  drainOnStopMs?: number;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

const STOP_ACK_MS = 1000;
/** MQTT 5 PUBACK "Quota exceeded": the broker may take the message later. */
const QUOTA_EXCEEDED = 0x97;
const STOP_END_MS = 1000;
/** Below this, a reconnect is due before a knock on the broker's port could cut the wait short. */
const KNOCK_FROM_MS = 500;
const DEFAULT_PORTS: Record<string, number> = { "mqtt:": 1883, "mqtts:": 8883, "ws:": 80, "wss:": 443 };

/** The broker's host and port, to knock on while waiting to reconnect; undefined for a url that does not parse. */
function brokerEndpoint(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(normalizeUserInfo(url));
    const port = u.port ? Number(u.port) : DEFAULT_PORTS[u.protocol];
    return port ? { host: u.hostname.replace(/^\[|\]$/g, ""), port } : undefined;
  } catch {
    return undefined;
  }
}

/** The uplink in health. */
export type MqttHealth = PartHealth & {
  connected: boolean;
  /** The broker url, without credentials. */
  url: string;
  /** Messages sent and not yet acknowledged. */
  inflight: number;
  reconnects: number;
  sent: number;
};

/**
 * The uplink: one MQTT.js connection that drains the outbox at QoS 1.
 *
 * At most `inflight` messages are handed to MQTT.js at a time, oldest first, so per-topic order
 * holds and memory stays bounded however deep the outbox is. A message leaves the outbox only on
 * its PUBACK. When the connection drops, every unacknowledged message is read again from the
 * outbox and re-sent on the next connection, which is a fresh MQTT.js client: MQTT.js's own
 * in-memory resend is never relied on, and a daemon restart re-sends the same way.
 *
 * Status (retained): connection number k (persisted, rising across restarts) publishes `online`
 * with seq 2k-1 right after CONNACK; its last will `offline` and a clean `stopped` carry seq 2k.
 */
export class MqttPublisher implements Part {
  readonly name = "mqtt";
  readonly kind = "mqtt";
  readonly #opts: PublisherOptions;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #handlers = new Map<string, MessageHandler>();
  #client: MqttClient | undefined;
  #gen = 0;
  #connected = false;
  #stopping = false;
  #connection = 0;
  #window = 1;
  #cursor = 0;
  readonly #inflight = new Set<number>();
  #pumpTick: NodeJS.Immediate | undefined;
  #retry: NodeJS.Timeout | undefined;
  #knocker: PortKnocker | undefined;
  #attempts = 0;
  #unsubscribeCommit: (() => void) | undefined;
  #lastError: string | undefined;
  #reconnects = 0;
  #sent = 0;

  constructor(opts: PublisherOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    // "above": no reconnect comes sooner than reconnect_min_ms, the first included.
    this.#backoff = new Backoff({ initial_ms: opts.mqtt.reconnect_min_ms, max_ms: opts.mqtt.reconnect_max_ms, jitter: "above" });
  }

  async start(): Promise<void> {
    this.#stopping = false;
    // Read the TLS material once now, so a missing file fails this part at start with its name.
    clientOptions(
      this.#opts.mqtt,
      this.#opts.deviceId,
      this.#opts.baseDir,
      { topic: this.#opts.topics.status(), payload: "" },
      this.#opts.referenced,
    );
    this.#unsubscribeCommit = this.#opts.outbox.onCommit(() => this.#schedulePump());
    // While the outbox cannot commit, health and command answers come straight through here.
    this.#opts.outbox.setDirectSender((m) => {
      const client = this.#client;
      if (!client || !this.#connected) return false;
      client.publish(m.topic, m.payload, { qos: 1, retain: m.retain }, (err) => {
        if (err) this.#log.debug({ topic: m.topic, reason: err.message }, "direct message not acknowledged");
      });
      return true;
    });
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#unsubscribeCommit?.();
    this.#opts.outbox.setDirectSender(undefined);
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#knocker?.stop();
    this.#knocker = undefined;
    const client = this.#client;
    if (client && this.#connected) {
      // Bounded so a frozen broker cannot hold up shutdown; whatever is left stays in the outbox.
      await this.#drain(this.#opts.drainOnStopMs ?? 2000);
      await this.#publishStatus(client, "stopped", STOP_ACK_MS);
      // From here on this client's events are not ours to act on: its close must not look like a lost link.
      this.#gen++;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.end(true);
          resolve();
        }, STOP_END_MS);
        client.end(false, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } else if (client) {
      this.#gen++;
      client.end(true);
    }
    if (this.#pumpTick) clearImmediate(this.#pumpTick);
    this.#pumpTick = undefined;
    this.#client = undefined;
    this.#connected = false;
    this.#inflight.clear();
    this.#opts.outbox.flush();
  }

  /**
   * Subscribes to `filter` (QoS 1) on every connection; messages matching it (`+` and `#` as a
   * broker matches them) go to `handler`. This is how commands come in.
   */
  subscribe(filter: string, handler: MessageHandler): void {
    this.#handlers.set(filter, handler);
    if (this.#client && this.#connected) this.#subscribe(this.#client, filter);
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Connections tried since start(), the first included. */
  get attempts(): number {
    return this.#attempts;
  }

  health(): MqttHealth {
    const state = this.#stopping ? "stopped" : this.#connected ? "running" : "degraded";
    return {
      state,
      ...(this.#lastError !== undefined && !this.#connected ? { error: this.#lastError } : {}),
      connected: this.#connected,
      url: redactUrl(this.#opts.mqtt.url),
      inflight: this.#inflight.size,
      reconnects: this.#reconnects,
      sent: this.#sent,
    };
  }

  #connect(): void {
    if (this.#stopping) return;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#knocker?.stop();
    this.#knocker = undefined;
    this.#attempts++;
    const gen = ++this.#gen;
    const k = this.#opts.outbox.connections() + 1;
    const will = this.#statusPayload("offline", 2 * k);
    let opts: IClientOptions;
    try {
      opts = clientOptions(
        this.#opts.mqtt,
        this.#opts.deviceId,
        this.#opts.baseDir,
        { topic: this.#opts.topics.status(), payload: will },
        this.#opts.referenced,
      );
    } catch (err) {
      this.#fail(gen, err as Error);
      return;
    }
    this.#log.debug({ url: redactUrl(this.#opts.mqtt.url), connection: k }, "connecting");
    const client = mqtt.connect(this.#opts.mqtt.url, opts);
    this.#client = client;
    client.on("connect", (connack) => {
      if (gen !== this.#gen) return;
      this.#connection = k;
      // Never throws (a full disk only delays making the number durable): this runs in MQTT.js's event.
      this.#opts.outbox.setConnections(k);
      this.#connected = true;
      this.#backoff.reset();
      this.#lastError = undefined;
      const receiveMax = connack.properties?.receiveMaximum;
      this.#window = Math.max(1, Math.min(this.#opts.inflight, receiveMax ?? Infinity));
      this.#opts.metrics?.gauge("cityedge_mqtt_connected").set(1);
      this.#log.info(
        { url: redactUrl(this.#opts.mqtt.url), connection: k, window: this.#window, outbox: this.#opts.outbox.stats().depth },
        "MQTT connected",
      );
      void this.#publishStatus(client, "online", 0);
      for (const filter of this.#handlers.keys()) this.#subscribe(client, filter);
      // Everything still in the outbox was not acknowledged: send it all again, oldest first.
      this.#cursor = 0;
      this.#inflight.clear();
      this.#opts.outbox.rewind();
      this.#opts.outbox.drainDirect();
      this.#pump();
    });
    client.on("message", (topic, payload) => {
      if (gen !== this.#gen) return;
      this.#dispatch(topic, payload);
    });
    client.on("error", (err) => {
      if (gen !== this.#gen) return;
      this.#lastError = `${explainConnectError(err)}: ${err.message}`;
    });
    // MQTT.js keeps plain socket errors (refused, reset) to itself; the operator needs them.
    client.stream.on("error", (err: Error) => {
      if (gen !== this.#gen) return;
      this.#lastError = `${explainConnectError(err)}: ${err.message}`;
    });
    client.on("close", () => {
      if (gen !== this.#gen) return;
      this.#fail(gen, undefined);
    });
  }

  /** The connection ended (or never came up): forget what was in flight and retry later. */
  #fail(gen: number, err: Error | undefined): void {
    if (gen !== this.#gen) return;
    this.#gen++;
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#inflight.clear();
    this.#opts.outbox.flush();
    this.#client?.end(true);
    this.#client = undefined;
    this.#opts.metrics?.gauge("cityedge_mqtt_connected").set(0);
    if (err) this.#lastError = err.message;
    if (this.#stopping) return;
    const delay = this.#backoff.next();
    this.#reconnects++;
    this.#opts.metrics?.counter("cityedge_mqtt_reconnects_total").inc();
    const fields = {
      url: redactUrl(this.#opts.mqtt.url),
      retry_in_ms: delay,
      attempt: this.#backoff.attempt,
      outbox: this.#opts.outbox.stats().depth,
    };
    if (wasConnected) this.#log.warn({ ...fields, error: this.#lastError }, "MQTT connection lost; messages stay in the outbox");
    else this.#log.error({ ...fields, error: this.#lastError ?? "closed before CONNACK" }, "MQTT connect failed");
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect();
    }, delay);
    this.#knockWhileWaiting(delay, wasConnected);
  }

  /**
   * While waiting out the backoff, knock on the broker's port (as the cameras do on theirs): a
   * broker that accepts connections again is reconnected to at once, not after the rest of a
   * delay that may be half a minute.
   */
  #knockWhileWaiting(delay: number, wasConnected: boolean): void {
    const endpoint = brokerEndpoint(this.#opts.mqtt.url);
    if (!endpoint || delay < KNOCK_FROM_MS) return;
    this.#knocker = new PortKnocker({
      ...endpoint,
      wasWorking: wasConnected,
      waiting: () => !this.#stopping && this.#retry !== undefined,
      onBack: () => {
        this.#log.info({ url: redactUrl(this.#opts.mqtt.url) }, "broker accepts connections again; reconnecting now");
        this.#connect();
      },
    });
    this.#knocker.start();
  }

  #schedulePump(): void {
    if (!this.#connected) return;
    this.#pumpTick ??= setImmediate(() => {
      this.#pumpTick = undefined;
      this.#pump();
    });
  }

  /** Hands the next messages to MQTT.js, up to the in-flight window. */
  #pump(): void {
    const client = this.#client;
    if (!client || !this.#connected) return;
    const gen = this.#gen;
    const room = this.#window - this.#inflight.size;
    if (room <= 0) return;
    const rows = this.#opts.outbox.read(this.#cursor, room);
    for (const row of rows) {
      this.#inflight.add(row.id);
      this.#cursor = row.id;
      client.publish(row.topic, row.payload, { qos: 1, retain: row.retain }, (err) => {
        if (gen !== this.#gen) return;
        if (err) {
          const code = (err as Error & { code?: unknown }).code;
          if (typeof code === "number" && code >= 0x80 && code !== QUOTA_EXCEEDED) {
            this.#inflight.delete(row.id);
            this.#opts.outbox.reject(row.id, row.topic, `${err.message} (reason code 0x${code.toString(16)})`);
            this.#schedulePump();
            return;
          }
          if (code === QUOTA_EXCEEDED) {
            // Refused for now: start over on a new connection, so it and everything after it go
            // again in order. Deferred: MQTT.js is still iterating its callbacks here.
            this.#log.warn({ topic: row.topic, reason: err.message }, "broker quota exceeded; reconnecting to send again");
            setImmediate(() => this.#fail(gen, err));
            return;
          }
          // The connection is going down; its close handler starts over from the outbox.
          this.#log.debug({ topic: row.topic, reason: err.message }, "publish not acknowledged before the connection closed");
          return;
        }
        this.#inflight.delete(row.id);
        this.#opts.outbox.ack(row.id);
        this.#sent++;
        this.#opts.metrics?.counter("cityedge_mqtt_published_total").inc();
        this.#schedulePump();
      });
    }
  }

  /** Waits until the outbox is empty and nothing is in flight, or `ms` passed. */
  async #drain(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.#connected && Date.now() < deadline) {
      this.#opts.outbox.flush();
      if (this.#inflight.size === 0 && this.#opts.outbox.stats().depth === 0) return;
      this.#pump();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  #statusPayload(state: StatusState, seq: number): string {
    return statusMessage(
      { id: randomUUID(), device_id: this.#opts.deviceId, ts: new Date().toISOString(), epoch: this.#opts.outbox.epoch, seq },
      { state, connection: Math.ceil(seq / 2) },
    );
  }

  /** Publishes a retained status; with `waitMs` > 0 waits (bounded) for the PUBACK. */
  async #publishStatus(client: MqttClient, state: StatusState, waitMs: number): Promise<void> {
    const seq = state === "online" ? 2 * this.#connection - 1 : 2 * this.#connection;
    const payload = this.#statusPayload(state, seq);
    await new Promise<void>((resolve) => {
      const timer = waitMs > 0 ? setTimeout(resolve, waitMs) : undefined;
      client.publish(this.#opts.topics.status(), payload, { qos: 1, retain: true }, (err) => {
        if (err) this.#log.warn({ err, state }, "status not acknowledged");
        clearTimeout(timer);
        resolve();
      });
      if (waitMs <= 0) resolve();
    });
  }

  #subscribe(client: MqttClient, filter: string): void {
    client.subscribe(filter, { qos: 1 }, (err) => {
      if (err) this.#log.error({ err, filter }, "subscribe failed");
    });
  }

  #dispatch(topic: string, payload: Buffer): void {
    for (const [filter, handler] of this.#handlers) {
      if (!matches(filter, topic)) continue;
      try {
        handler(topic, payload);
      } catch (err) {
        this.#log.error({ err, topic }, "message handler failed");
      }
    }
  }
}

/** MQTT filter matching for `+` levels and a trailing `#`. */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
