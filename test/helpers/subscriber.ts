import mqtt, { type MqttClient } from "mqtt";

export interface Received {
  topic: string;
  payload: Record<string, unknown>;
  retain: boolean;
  raw: string;
}

/**
 * A cloud-side subscriber: records every message on `filter` in arrival order and lets a test
 * wait for a condition instead of sleeping.
 */
export class Subscriber {
  readonly messages: Received[] = [];
  #client: MqttClient | undefined;
  #filter = "";
  readonly #waiters = new Set<() => void>();
  /** CONNACKs received so far (1 after connect(); more after each reconnect). */
  connects = 0;

  static async connect(url: string, filter: string, opts: mqtt.IClientOptions = {}): Promise<Subscriber> {
    const s = new Subscriber();
    const client = mqtt.connect(url, { reconnectPeriod: 200, clean: true, ...opts });
    s.#client = client;
    s.#filter = filter;
    client.on("connect", () => {
      s.connects++;
      for (const w of s.#waiters) w();
    });
    client.on("message", (topic, payload, packet) => {
      const raw = payload.toString();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        parsed = { unparsable: raw };
      }
      s.messages.push({ topic, payload: parsed, retain: packet.retain, raw });
      for (const w of s.#waiters) w();
    });
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    await client.subscribeAsync(filter, { qos: 1 });
    return s;
  }

  /** Resolves when `pred` holds over the messages so far; rejects with `what` after `timeoutMs`. */
  async waitFor(what: string, pred: (msgs: Received[]) => boolean, timeoutMs = 30_000): Promise<void> {
    if (pred(this.messages)) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pred(this.messages)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.messages.length} messages so far)`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Waits for a reconnect after `connects` reached `after`, then renews the subscription (SUBACK awaited). */
  async resubscribed(after: number, timeoutMs = 30_000): Promise<void> {
    await this.waitFor("the subscriber to reconnect", () => this.connects > after, timeoutMs);
    await this.#client!.subscribeAsync(this.#filter, { qos: 1 });
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  async close(): Promise<void> {
    await this.#client?.endAsync(true);
  }
}

/**
 * Checks the delivery promise on what a subscriber saw: per topic, after removing duplicates
 * (same seq must mean same id), seqs are exactly `from..to` in order of first arrival.
 * Returns the number of duplicates.
 */
export function assertNoGaps(msgs: Received[], topic: string, from: number, to: number): number {
  const ids = new Map<number, unknown>();
  const order: number[] = [];
  let dups = 0;
  for (const m of msgs) {
    if (m.topic !== topic) continue;
    const seq = m.payload.seq as number;
    const seen = ids.get(seq);
    if (seen !== undefined) {
      if (seen !== m.payload.id)
        throw new Error(`${topic}: seq ${seq} arrived twice with different ids (${JSON.stringify(seen)}, ${JSON.stringify(m.payload.id)})`);
      dups++;
      continue;
    }
    ids.set(seq, m.payload.id);
    order.push(seq);
  }
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const missing = expected.filter((s) => !ids.has(s));
  if (missing.length > 0) throw new Error(`${topic}: ${missing.length} seqs missing, first ${missing.slice(0, 10).join(", ")}`);
  for (let i = 1; i < order.length; i++) {
    if (order[i]! < order[i - 1]!) throw new Error(`${topic}: seq ${order[i]} arrived after ${order[i - 1]} (out of order)`);
  }
  return dups;
}

/** What a subscriber can prove about one topic's stream, keyed by (epoch, seq). */
export interface StreamAudit {
  topic: string;
  /** Epochs in order of first arrival. */
  epochs: string[];
  /** Distinct messages received. */
  received: number;
  /** Messages received again with the same id (allowed). */
  duplicates: number;
  /** The same (epoch, seq) with a different id: never allowed. */
  idMismatches: string[];
  /** A seq that arrived after a higher one of the same epoch. */
  outOfOrder: string[];
  /** Missing seqs per epoch, as ranges [from, to], between 1 and the highest seq seen. */
  gaps: { epoch: string; from: number; to: number; before?: Received; after?: Received }[];
}

/** Audits one topic: duplicates must keep their id, order must hold, and every missing seq is listed as a gap. */
export function auditStream(msgs: Received[], topic: string): StreamAudit {
  const byEpoch = new Map<string, Map<number, Received>>();
  const epochs: string[] = [];
  const audit: StreamAudit = { topic, epochs, received: 0, duplicates: 0, idMismatches: [], outOfOrder: [], gaps: [] };
  const highest = new Map<string, number>();
  for (const m of msgs) {
    if (m.topic !== topic) continue;
    const epoch = typeof m.payload.epoch === "string" ? m.payload.epoch : "";
    const seq = m.payload.seq as number;
    let seen = byEpoch.get(epoch);
    if (!seen) {
      seen = new Map();
      byEpoch.set(epoch, seen);
      epochs.push(epoch);
    }
    const prev = seen.get(seq);
    if (prev) {
      if (prev.payload.id !== m.payload.id) audit.idMismatches.push(`${epoch}:${seq} ids ${String(prev.payload.id)} / ${String(m.payload.id)}`);
      else audit.duplicates++;
      continue;
    }
    if (seq < (highest.get(epoch) ?? 0)) audit.outOfOrder.push(`${epoch}:${seq} after ${highest.get(epoch)}`);
    highest.set(epoch, Math.max(highest.get(epoch) ?? 0, seq));
    seen.set(seq, m);
    audit.received++;
  }
  for (const [epoch, seen] of byEpoch) {
    const max = highest.get(epoch) ?? 0;
    let from: number | undefined;
    for (let s = 1; s <= max + 1; s++) {
      if (!seen.has(s) && s <= max) from ??= s;
      else if (from !== undefined) {
        audit.gaps.push({ epoch, from, to: s - 1, before: seen.get(from - 1), after: seen.get(s) });
        from = undefined;
      }
    }
  }
  return audit;
}
