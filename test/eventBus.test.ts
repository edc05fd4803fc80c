import { describe, expect, it } from "vitest";
import { EventBus } from "../runtime/events/eventBus.js";
import { memoryLogger } from "./helpers/camera.js";

interface Events {
  a: { n: number };
  b: string;
}

describe("EventBus", () => {
  it("hands each event to its listeners in subscription order, and not after they unsubscribe", () => {
    const bus = new EventBus<Events>();
    const seen: string[] = [];
    const off1 = bus.on("a", (d) => seen.push(`1:${d.n}`));
    bus.on("a", (d) => seen.push(`2:${d.n}`));
    bus.on("b", (d) => seen.push(`b:${d}`));
    expect(bus.emit("a", { n: 1 })).toBe(2);
    off1();
    expect(bus.emit("a", { n: 2 })).toBe(1);
    bus.emit("b", "x");
    expect(seen).toEqual(["1:1", "2:1", "2:2", "b:x"]);
    expect(bus.listenerCount("a")).toBe(1);
  });

  it("runs every listener even when one throws, then rethrows to the emitter (several: an AggregateError)", () => {
    const bus = new EventBus<Events>();
    const seen: number[] = [];
    bus.on("a", () => {
      throw new Error("outbox: message is 300000 bytes");
    });
    bus.on("a", (d) => seen.push(d.n));
    expect(() => bus.emit("a", { n: 1 })).toThrow("outbox: message is 300000 bytes");
    expect(seen).toEqual([1]);
    bus.on("a", () => {
      throw new Error("second");
    });
    expect(() => bus.emit("a", { n: 2 })).toThrow(AggregateError);
    expect(seen).toEqual([1, 2]);
  });

  it("a listener may unsubscribe while the event is handed out; the others still get it", () => {
    const bus = new EventBus<Events>();
    const seen: string[] = [];
    const off = bus.on("b", () => {
      seen.push("first");
      off();
    });
    bus.on("b", () => seen.push("second"));
    bus.emit("b", "x");
    bus.emit("b", "y");
    expect(seen).toEqual(["first", "second", "second"]);
  });

  it("counts and logs what is emitted while nobody listens (nothing is lost unseen)", () => {
    const { log, lines } = memoryLogger();
    const bus = new EventBus<Events>(log);
    expect(bus.emit("a", { n: 1 })).toBe(0);
    bus.emit("a", { n: 2 });
    expect(bus.unheard()).toEqual({ a: 2 });
    const warnings = lines
      .map((l) => JSON.parse(l) as { msg: string; total: number })
      .filter((l) => l.msg.startsWith('event "a" emitted while nothing'));
    expect(warnings.map((w) => w.total)).toEqual([1]);
  });
});
