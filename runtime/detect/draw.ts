import sharp from "sharp";
import type { ObjectOut } from "./types.js";

const COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"];

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A counting line to draw, normalized coordinates. */
export interface DrawnLine {
  id: string;
  from: readonly [number, number];
  to: readonly [number, number];
}

/** An SVG of the boxes (normalized coordinates) with their labels, and counting lines, for a picture of width × height. */
export function boxesSvg(objects: readonly ObjectOut[], width: number, height: number, lines: readonly DrawnLine[] = []): Buffer {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(10, Math.round(Math.min(width, height) / 40));
  const parts = objects.map((o) => {
    const colour = COLOURS[(o.track_id ?? o.class_id) % COLOURS.length]!;
    const x = o.x1 * width;
    const y = o.y1 * height;
    const w = (o.x2 - o.x1) * width;
    const h = (o.y2 - o.y1) * height;
    const text = `${o.label}${o.track_id !== undefined ? ` #${o.track_id}` : ""} ${o.score.toFixed(2)}`;
    const ty = y > font + 2 ? y - 3 : y + font;
    return (
      `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>` +
      `<text x="${x.toFixed(1)}" y="${ty.toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="${colour}" stroke="black" stroke-width="0.6">${escapeXml(text)}</text>`
    );
  });
  for (const l of lines) {
    const [x1, y1, x2, y2] = [l.from[0] * width, l.from[1] * height, l.to[0] * width, l.to[1] * height].map((v) => v.toFixed(1));
    parts.push(
      `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#ffff00" stroke-width="${stroke}" stroke-dasharray="${stroke * 4},${stroke * 2}"/>` +
        `<text x="${x1}" y="${y1}" font-family="sans-serif" font-size="${font}" fill="#ffff00" stroke="black" stroke-width="0.6">${escapeXml(l.id)}</text>`,
    );
  }
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join("")}</svg>`);
}

/** Draws boxes onto a picture (any sharp input) and returns the sharp pipeline, ready for .jpeg()/.png(). */
export async function drawBoxes(input: sharp.Sharp, objects: readonly ObjectOut[]): Promise<sharp.Sharp> {
  const { data, info } = await input.clone().raw().toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).composite([
    { input: boxesSvg(objects, info.width, info.height), top: 0, left: 0 },
  ]);
}
