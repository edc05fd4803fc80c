import sharp from "sharp";
import type { ObjectOut } from "./types.js";

const COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"];
const LINE_COLOUR = "#ffd60a";
const ZONE_COLOUR = "#64d2ff";

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

type Point = readonly [number, number];

/** A counting line to draw, normalized coordinates. */
export interface DrawnLine {
  id: string;
  from: Point;
  to: Point;
}

/** Counting lines and zones to draw, normalized to the picture like the config has them. */
export interface Geometry {
  lines: readonly DrawnLine[];
  zones: readonly { id: string; polygon: readonly Point[] }[];
}

/** The colour a track (or, untracked, a class) is drawn in, the same in snapshots and in the console. */
export function colourOf(o: Pick<ObjectOut, "track_id" | "class_id">): string {
  return COLOURS[(o.track_id ?? o.class_id) % COLOURS.length]!;
}

/** A label on a dark band, readable on any picture (the width is an estimate: sans-serif is about 0.6 em a character). */
function labelSvg(text: string, x: number, y: number, colour: string, font: number): string {
  const w = text.length * font * 0.6 + 6;
  return (
    `<rect x="${x.toFixed(1)}" y="${(y - font - 1).toFixed(1)}" width="${w.toFixed(1)}" height="${(font + 5).toFixed(1)}" fill="black" fill-opacity="0.6"/>` +
    `<text x="${(x + 3).toFixed(1)}" y="${(y + 1).toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="${colour}">${escapeXml(text)}</text>`
  );
}

function boxSvg(o: ObjectOut, width: number, height: number, stroke: number, font: number): string {
  const colour = colourOf(o);
  const x = o.x1 * width;
  const y = o.y1 * height;
  const w = (o.x2 - o.x1) * width;
  const h = (o.y2 - o.y1) * height;
  const text = `${o.label}${o.track_id !== undefined ? ` #${o.track_id}` : ""} ${o.score.toFixed(2)}`;
  const ty = y > font + 2 ? y - 3 : y + font;
  return (
    `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
    labelSvg(text, x, ty, colour, font)
  );
}

/** A counting line with an arrow across it pointing to its "in" side (the right of from→to). */
function lineSvg(l: Geometry["lines"][number], width: number, height: number, stroke: number, font: number): string {
  const [x1, y1] = [l.from[0] * width, l.from[1] * height];
  const [x2, y2] = [l.to[0] * width, l.to[1] * height];
  const len = Math.hypot(x2 - x1, y2 - y1) || 1;
  // Right of from→to in picture coordinates (y down) is the direction (-dy, dx).
  const [nx, ny] = [-(y2 - y1) / len, (x2 - x1) / len];
  const [mx, my] = [(x1 + x2) / 2, (y1 + y2) / 2];
  const a = Math.max(10, font * 1.4);
  const tip = [mx + nx * a, my + ny * a];
  const f = (v: number) => v.toFixed(1);
  return (
    `<line x1="${f(x1)}" y1="${f(y1)}" x2="${f(x2)}" y2="${f(y2)}" stroke="${LINE_COLOUR}" stroke-width="${stroke + 1}"/>` +
    `<line x1="${f(mx)}" y1="${f(my)}" x2="${f(tip[0]!)}" y2="${f(tip[1]!)}" stroke="${LINE_COLOUR}" stroke-width="${stroke}"/>` +
    `<circle cx="${f(tip[0]!)}" cy="${f(tip[1]!)}" r="${f(stroke * 1.5)}" fill="${LINE_COLOUR}"/>` +
    labelSvg(l.id, x1 + 4, y1 - 4, LINE_COLOUR, font)
  );
}

function zoneSvg(z: Geometry["zones"][number], width: number, height: number, stroke: number, font: number): string {
  const pts = z.polygon.map(([x, y]) => `${(x * width).toFixed(1)},${(y * height).toFixed(1)}`).join(" ");
  const [x0, y0] = z.polygon[0] ?? [0, 0];
  return (
    `<polygon points="${pts}" fill="${ZONE_COLOUR}" fill-opacity="0.15" stroke="${ZONE_COLOUR}" stroke-width="${stroke}"/>` +
    labelSvg(z.id, x0 * width + 4, y0 * height + font + 4, ZONE_COLOUR, font)
  );
}

/** An SVG of the boxes (normalized coordinates) with their labels, and any lines (and zones), for a picture of width × height. */
export function boxesSvg(objects: readonly ObjectOut[], width: number, height: number, drawn?: Geometry | readonly DrawnLine[]): Buffer {
  const geometry: Geometry | undefined = drawn === undefined ? undefined : "lines" in drawn ? drawn : { lines: drawn, zones: [] };
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(10, Math.round(Math.min(width, height) / 40));
  const parts = [
    ...(geometry?.zones ?? []).map((z) => zoneSvg(z, width, height, stroke, font)),
    ...(geometry?.lines ?? []).map((l) => lineSvg(l, width, height, stroke, font)),
    ...objects.map((o) => boxSvg(o, width, height, stroke, font)),
  ];
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join("")}</svg>`);
}

/** Draws boxes (and lines and zones) onto a picture (any sharp input) and returns the sharp pipeline, ready for .jpeg()/.png(). */
export async function drawBoxes(input: sharp.Sharp, objects: readonly ObjectOut[], geometry?: Geometry): Promise<sharp.Sharp> {
  const { data, info } = await input.clone().raw().toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).composite([
    { input: boxesSvg(objects, info.width, info.height, geometry), top: 0, left: 0 },
  ]);
}
