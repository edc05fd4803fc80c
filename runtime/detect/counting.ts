import type { Track } from "./tracker.js";

export type Point = readonly [number, number];

export interface LineSpec {
  id: string;
  from: Point;
  to: Point;
  /** Class ids counted; undefined counts every class. */
  classes?: ReadonlySet<number>;
}

export interface ZoneSpec {
  id: string;
  polygon: readonly Point[];
  classes?: ReadonlySet<number>;
}

/** Which side of the directed line from→to a point is on: > 0 right (in picture coordinates, y down), < 0 left. */
export function side(from: Point, to: Point, p: Point): number {
  return (to[0] - from[0]) * (p[1] - from[1]) - (to[1] - from[1]) * (p[0] - from[0]);
}

/**
 * Whether the move a→b crosses the line segment from→to, and which way: "in" from its left to
 * its right, "out" from right to left; undefined when it does not cross. A point exactly on the
 * line belongs to its left side, so a track stepping onto the line and then off it counts once.
 */
export function crossing(from: Point, to: Point, a: Point, b: Point): "in" | "out" | undefined {
  const ra = side(from, to, a) > 0;
  const rb = side(from, to, b) > 0;
  if (ra === rb) return undefined;
  // The move must also pass between the line's ends.
  const ta = side(a, b, from);
  const tb = side(a, b, to);
  if (ta !== 0 && tb !== 0 && ta > 0 === tb > 0) return undefined;
  return rb ? "in" : "out";
}

/** Ray casting: whether p is inside the polygon. */
export function inPolygon(poly: readonly Point[], p: Point): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!;
    const [xj, yj] = poly[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export interface LineCounts {
  line_id: string;
  /** Per label: crossings in each direction. */
  counts: Record<string, { in: number; out: number }>;
}

export interface ZoneCounts {
  zone_id: string;
  /** Per label: tracks that entered during the interval. */
  entered: Record<string, number>;
  /** Per label: tracks inside at the end of the interval. */
  present: Record<string, number>;
}

export interface CounterOptions {
  /**
   * Hysteresis: after its centre has passed a line, a track counts once the centre is this share
   * of its box's size (measured across the line) beyond it, so a box jittering on the line counts
   * once (with 0.12, a centre that wobbles by a tenth of the box about the line). 0 counts on the
   * line itself.
   */
  hysteresis: number;
}

export const COUNTER_DEFAULTS: CounterOptions = { hysteresis: 0.12 };

/** How close to the picture's border (normalized) a box must come to be leaving the picture. */
const EDGE = 0.002;

/** Per track and line: the side the track is settled on, and its last position there. */
interface LineState {
  right: boolean;
  at: Point;
  /** Past the line but not yet clear of it, while the box touches the picture's border. */
  leaving?: { at: Point; label: string };
}

/**
 * Counts confirmed tracks crossing lines (direction-aware) and entering zones, per label, for
 * one interval at a time. `take()` returns the interval's counts and starts the next one.
 *
 * Each track is settled on one side of each line, from where its history starts (its first
 * sighting, even before it was confirmed). A crossing counts when its centre has passed the line,
 * between the line's ends, and moved clear of it by the hysteresis margin; the track is then
 * settled on the other side. So a box jittering on the line counts once, and a track handed from
 * one object to another (two buses passing each other) still counts each object's crossing. A
 * track that leaves the picture past the line before it is clear of it (a bus whose box is cut by
 * the picture's border) counts when it ends. A crossing counts with the track's class at that
 * moment (its weighted majority vote, see {@link Track.votes}).
 */
export class Counter {
  readonly #lines: readonly LineSpec[];
  readonly #zones: readonly ZoneSpec[];
  readonly #label: (classId: number) => string;
  readonly #o: CounterOptions;
  #lineCounts = new Map<string, Map<string, { in: number; out: number }>>();
  #entered = new Map<string, Map<string, number>>();
  /** Per zone: ids of the tracks inside now, with their label. */
  readonly #inside = new Map<string, Map<number, string>>();
  /** Tracks that crossed any line in this interval (for flow). */
  #crossedTracks = new Set<number>();
  /** Per track id, per line id: where the track is settled; kept across intervals until the track ends. */
  readonly #state = new Map<number, Map<string, LineState>>();

  constructor(lines: readonly LineSpec[], zones: readonly ZoneSpec[], label: (classId: number) => string, options: Partial<CounterOptions> = {}) {
    this.#lines = lines;
    this.#zones = zones;
    this.#label = label;
    this.#o = { ...COUNTER_DEFAULTS, ...options };
    for (const z of zones) this.#inside.set(z.id, new Map());
  }

  get hasLines(): boolean {
    return this.#lines.length > 0;
  }

  /** Crossings recorded for the interval so far, by distinct track. */
  get crossedTracks(): number {
    return this.#crossedTracks.size;
  }

  #count(lineId: string, label: string, dir: "in" | "out", trackId: number): void {
    let per = this.#lineCounts.get(lineId);
    if (!per) this.#lineCounts.set(lineId, (per = new Map<string, { in: number; out: number }>()));
    let c = per.get(label);
    if (!c) per.set(label, (c = { in: 0, out: 0 }));
    c[dir]++;
    this.#crossedTracks.add(trackId);
  }

  /** The crossing `t` makes of line `l` in this frame, if any, updating where the track is settled. */
  #lineCrossing(t: Track, l: LineSpec): "in" | "out" | undefined {
    let perTrack = this.#state.get(t.id);
    if (!perTrack) this.#state.set(t.id, (perTrack = new Map<string, LineState>()));
    let st = perTrack.get(l.id);
    if (!st) {
      st = { right: side(l.from, l.to, t.origin) > 0, at: t.origin };
      perTrack.set(l.id, st);
    }
    const s = side(l.from, l.to, t.centre);
    st.leaving = undefined;
    if (s > 0 === st.right) {
      st.at = t.centre;
      return undefined;
    }
    // Past the line: it counts once the centre is clear of it by the margin, measured across the line.
    const len = Math.hypot(l.to[0] - l.from[0], l.to[1] - l.from[1]);
    if (len === 0) return undefined;
    const b = t.box;
    const across = (Math.abs(l.to[1] - l.from[1]) * (b.x2 - b.x1) + Math.abs(l.to[0] - l.from[0]) * (b.y2 - b.y1)) / len;
    if (Math.abs(s) / len < this.#o.hysteresis * across) {
      if (b.x1 <= EDGE || b.y1 <= EDGE || b.x2 >= 1 - EDGE || b.y2 >= 1 - EDGE) st.leaving = { at: t.centre, label: this.#label(t.class_id) };
      return undefined;
    }
    const dir = crossing(l.from, l.to, st.at, t.centre);
    st.right = s > 0;
    st.at = t.centre;
    return dir; // undefined when it passed beside the line
  }

  /** Feeds the confirmed tracks that moved in this frame, and the ids of tracks that ended. */
  observe(moved: readonly Track[], endedIds: readonly number[]): void {
    for (const t of moved) {
      const label = this.#label(t.class_id);
      for (const l of this.#lines) {
        if (l.classes && !l.classes.has(t.class_id)) continue;
        const dir = this.#lineCrossing(t, l);
        if (dir !== undefined) this.#count(l.id, label, dir, t.id);
      }
      for (const z of this.#zones) {
        if (z.classes && !z.classes.has(t.class_id)) continue;
        const inside = this.#inside.get(z.id)!;
        const now = inPolygon(z.polygon, t.centre);
        if (now && !inside.has(t.id)) {
          inside.set(t.id, label);
          let per = this.#entered.get(z.id);
          if (!per) this.#entered.set(z.id, (per = new Map<string, number>()));
          per.set(label, (per.get(label) ?? 0) + 1);
        } else if (!now) {
          inside.delete(t.id);
        }
      }
    }
    for (const id of endedIds) {
      // A track that left the picture past a line, before it was clear of it, crossed it.
      for (const [lineId, st] of this.#state.get(id) ?? []) {
        if (!st.leaving) continue;
        const l = this.#lines.find((x) => x.id === lineId)!;
        const dir = crossing(l.from, l.to, st.at, st.leaving.at);
        if (dir !== undefined) this.#count(lineId, st.leaving.label, dir, id);
      }
      this.#state.delete(id);
      for (const inside of this.#inside.values()) inside.delete(id);
    }
  }

  /** The line crossings of the interval so far, without ending it. */
  peekLines(): LineCounts[] {
    return this.#lines.map((l) => ({
      line_id: l.id,
      counts: Object.fromEntries([...(this.#lineCounts.get(l.id) ?? [])].map(([label, c]) => [label, { ...c }])),
    }));
  }

  take(): { lines: LineCounts[]; zones: ZoneCounts[] } {
    const lines = this.#lines.map((l) => ({ line_id: l.id, counts: Object.fromEntries(this.#lineCounts.get(l.id) ?? []) }));
    const zones = this.#zones.map((z) => {
      const present: Record<string, number> = {};
      for (const label of this.#inside.get(z.id)!.values()) present[label] = (present[label] ?? 0) + 1;
      return { zone_id: z.id, entered: Object.fromEntries(this.#entered.get(z.id) ?? []), present };
    });
    this.#lineCounts = new Map();
    this.#entered = new Map();
    this.#crossedTracks = new Set();
    return { lines, zones };
  }
}
