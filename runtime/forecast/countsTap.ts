import type { HistoryStore } from "../history/historyStore.js";
import type { Logger } from "../log/logger.js";
import type { MessageSink } from "../mqtt/sink.js";
import type { Topics } from "../mqtt/topics.js";

/** The history series of a camera's counts; forecasts name it as `camera:<id>:counts`. */
export const countsSeries = (cameraId: string): string => `camera:${cameraId}:counts`;

/** The part of a counts message (runtime/detect) that history needs. */
export interface CountsBody {
  interval_start?: unknown;
  lines?: { id?: string; counts?: Record<string, { in?: number; out?: number } | undefined> }[];
}

/** Vehicles (and other classes) that crossed any counting line in one counts message, both ways. */
export function totalCrossings(body: CountsBody): number {
  let n = 0;
  for (const line of body.lines ?? []) for (const c of Object.values(line.counts ?? {})) n += (c?.in ?? 0) + (c?.out ?? 0);
  return n;
}

/**
 * A sink in front of the outbox for the camera pipelines: every message passes through
 * unchanged, and the counts of the cameras a forecast names are also recorded in history (the
 * crossings of the interval, at its start), so camera counts can be forecast like meter values.
 */
export function countsTap(sink: MessageSink, topics: Topics, store: HistoryStore, cameraIds: readonly string[], log: Logger): MessageSink {
  if (cameraIds.length === 0) return sink;
  const byTopic = new Map(cameraIds.map((id) => [topics.counts(id), id]));
  return {
    publish(topic, body, opts) {
      sink.publish(topic, body, opts);
      const cameraId = byTopic.get(topic);
      if (cameraId === undefined) return;
      const ts = Date.parse(String((body as CountsBody).interval_start));
      try {
        if (Number.isNaN(ts)) throw new Error(`counts message without a valid interval_start: ${String((body as CountsBody).interval_start)}`);
        store.record(countsSeries(cameraId), ts, totalCrossings(body as CountsBody), "good");
      } catch (err) {
        log.warn({ camera: cameraId, err }, "camera counts not recorded in history");
      }
    },
  };
}
