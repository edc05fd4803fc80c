import mqtt from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MqttInMeter } from "../drivers/meter/mqttIn.js";
import { METER_SCHEMA, type MqttMeterConfig } from "../runtime/config/sections/meters.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { ReadingCollector } from "./helpers/readingCollector.js";
import { READINGS } from "../runtime/contract/index.js";
import { readingPayload } from "../runtime/meters/metersPart.js";

const log = pino({ level: "silent" });

describe("MQTT-in meter against a real mosquitto", () => {
  let broker: Mosquitto;
  let meter: MqttInMeter;
  let pub: mqtt.MqttClient;
  const c = new ReadingCollector();

  beforeAll(async () => {
    broker = await new Mosquitto().start();
    const cfg = METER_SCHEMA.parse({
      driver: "mqtt",
      id: "tasmota-1",
      url: broker.url,
      topic: "tele/+/SENSOR",
      values: { power_w: { path: "ENERGY.Power", unit: "W" }, energy_kwh: { path: "ENERGY.Total", unit: "kWh", scale: 0.001 } },
      timestamp_path: "Time",
      stale_after_ms: 60_000,
      limits: { power_w: { min: -10_000, max: 10_000 } },
    }) as MqttMeterConfig;
    meter = new MqttInMeter(cfg, log);
    await meter.start(c.listener);
    pub = await mqtt.connectAsync(broker.url);
    // wait until the meter's subscription is in place: publish until one arrives
    const first = c.next(() => true, 30_000);
    const timer = setInterval(
      () => void pub.publishAsync("tele/cab1/SENSOR", JSON.stringify({ Time: new Date().toISOString(), ENERGY: { Power: 1, Total: 1 } })),
      200,
    );
    await first.finally(() => clearInterval(timer));
  });
  afterAll(async () => {
    await meter?.stop();
    await pub?.endAsync();
    await broker?.stop();
  });

  const send = async (doc: unknown, raw?: string) => {
    const next = c.next(() => true);
    await pub.publishAsync("tele/cab1/SENSOR", raw ?? JSON.stringify(doc), { qos: 1 });
    return next;
  };

  it("maps fields by path, scales them, and takes the message's own timestamp", async () => {
    const t = new Date(Date.now() - 1000).toISOString();
    const r = await send({ Time: t, ENERGY: { Power: -350.5, Total: "123456" } });
    expect(r.ts).toBe(Date.parse(t));
    expect(r.values).toEqual({
      power_w: { value: -350.5, unit: "W", quality: "good" },
      energy_kwh: { value: 123.456, unit: "kWh", quality: "good" },
    });
    expect(r.error).toBeUndefined();
  });

  it("flags a missing field, a non-number, an out-of-range value and an old message", async () => {
    const now = new Date().toISOString();
    const missing = await send({ Time: now, ENERGY: { Power: 5 } });
    expect(missing.values.energy_kwh).toEqual({ value: null, unit: "kWh", quality: "error" });
    expect(missing.error).toBe('message has no number at "ENERGY.Total"');
    const nan = await send({ Time: now, ENERGY: { Power: "n/a", Total: 1 } });
    expect(nan.values.power_w?.quality).toBe("nan");
    const high = await send({ Time: now, ENERGY: { Power: 20_000, Total: 1 } });
    expect(high.values.power_w).toEqual({ value: 20_000, unit: "W", quality: "out_of_range" });
    const old = await send({ Time: new Date(Date.now() - 5 * 60_000).toISOString(), ENERGY: { Power: 5, Total: 1 } });
    expect(old.values.power_w?.quality).toBe("stale");
    expect(old.error).toBe("message is older than stale_after_ms");
  });

  it("flags a message that is not JSON, and keeps going", async () => {
    const bad = await send(undefined, "{not json");
    expect(Object.values(bad.values).map((v) => v.quality)).toEqual(["error", "error"]);
    expect(bad.error).toMatch(/^message is not JSON/);
    const good = await send({ Time: new Date().toISOString(), ENERGY: { Power: 1, Total: 2 } });
    expect(good.values.power_w?.quality).toBe("good");
    expect(meter.health()).toMatchObject({ state: "running", connected: true });
  });

  it("publishes a bad reading, naming the problem, for a timestamp no reading can carry", async () => {
    for (const [stamp, why] of [
      [1e20, /^timestamp at "Time" is after 9999-12-31, got 100000000000000000000$/],
      ["+275760-09-13T00:00:00.000Z", /^timestamp at "Time" is after 9999-12-31, got "\+275760-09-13T00:00:00\.000Z"$/],
      [-5e12, /^timestamp at "Time" is before 1970-01-01, got -5000000000000$/],
    ] as const) {
      const before = Date.now();
      const r = await send({ Time: stamp, ENERGY: { Power: 5, Total: 1 } });
      expect(r.error).toMatch(why);
      expect(r.ts).toBeGreaterThanOrEqual(before);
      const body = readingPayload(r);
      expect(body).toMatchObject({ meter_id: "tasmota-1", quality: "bad" });
      expect(READINGS.body.safeParse(body).success).toBe(true);
    }
    // A reading a driver made with a time that cannot be written is published bad, not dropped.
    const body = readingPayload({ meterId: "m1", ts: Number.NaN, values: { p: { value: 1, unit: "W", quality: "good" } } }, Date.UTC(2026, 0, 1));
    expect(body).toEqual({
      meter_id: "m1",
      measured_at: "2026-01-01T00:00:00.000Z",
      quality: "bad",
      values: { p: { value: null, unit: "W", quality: "error" } },
      error: "measured_at is not a finite number (NaN)",
    });
    expect(READINGS.body.safeParse(body).success).toBe(true);
  });
});
