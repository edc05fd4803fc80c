import type { LineSpec, LiveObject, ZoneSpec } from "./types.js";

/** The same palette as the daemon's snapshots (runtime/detect/draw.ts): a track keeps its colour. */
const COLOURS = ["#ff3b30", "#34c759", "#007aff", "#ff9500", "#af52de", "#00c7be", "#ffcc00", "#ff2d55"];
export const LINE_COLOUR = "#ffd60a";
export const ZONE_COLOUR = "#64d2ff";

export const colourOf = (o: Pick<LiveObject, "track_id" | "class_id">): string => COLOURS[(o.track_id ?? o.class_id) % COLOURS.length]!;

function label(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, colour: string, font: number): void {
  ctx.font = `${font}px system-ui, sans-serif`;
  const w = ctx.measureText(text).width + 6;
  ctx.fillStyle = "rgba(0,0,0,0.65)";
  ctx.fillRect(x, y - font - 2, w, font + 4);
  ctx.fillStyle = colour;
  ctx.fillText(text, x + 3, y - 2);
}

/** Boxes with label, track id and score; coordinates normalized to the picture, drawn on a w × h canvas. */
export function drawObjects(ctx: CanvasRenderingContext2D, objects: readonly LiveObject[], w: number, h: number, scale: number): void {
  const font = Math.round(12 * scale);
  ctx.lineWidth = 2 * scale;
  for (const o of objects) {
    const [x1, y1, x2, y2] = o.box;
    const colour = colourOf(o);
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h);
    const text = `${o.label}${o.track_id !== undefined ? ` #${o.track_id}` : ""} ${o.score.toFixed(2)}`;
    const ty = y1 * h > font + 4 ? y1 * h : y1 * h + font + 4;
    label(ctx, text, x1 * w, ty, colour, font);
  }
}

/** A counting line with an arrow to its "in" side (the right of from→to, y down), its name and an optional count. */
export function drawLine(ctx: CanvasRenderingContext2D, l: LineSpec, w: number, h: number, scale: number, caption?: string, selected = false): void {
  const [x1, y1] = [l.from[0] * w, l.from[1] * h];
  const [x2, y2] = [l.to[0] * w, l.to[1] * h];
  const len = Math.hypot(x2 - x1, y2 - y1) || 1;
  const [nx, ny] = [-(y2 - y1) / len, (x2 - x1) / len];
  const [mx, my] = [(x1 + x2) / 2, (y1 + y2) / 2];
  const a = 18 * scale;
  ctx.strokeStyle = LINE_COLOUR;
  ctx.fillStyle = LINE_COLOUR;
  ctx.lineWidth = (selected ? 4 : 3) * scale;
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
  // The arrow across the middle, pointing "in".
  const [tx, ty] = [mx + nx * a, my + ny * a];
  ctx.lineWidth = 2 * scale;
  ctx.beginPath();
  ctx.moveTo(mx, my);
  ctx.lineTo(tx, ty);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(tx + nx * 6 * scale, ty + ny * 6 * scale);
  ctx.lineTo(tx - ny * 5 * scale, ty + nx * 5 * scale);
  ctx.lineTo(tx + ny * 5 * scale, ty - nx * 5 * scale);
  ctx.closePath();
  ctx.fill();
  label(
    ctx,
    caption ? `${l.id}: ${caption}` : l.id,
    Math.min(x1, w - 120 * scale),
    Math.max(y1 - 6 * scale, 16 * scale),
    LINE_COLOUR,
    Math.round(13 * scale),
  );
}

export function drawZone(ctx: CanvasRenderingContext2D, z: ZoneSpec, w: number, h: number, scale: number, selected = false): void {
  if (z.polygon.length < 2) return;
  ctx.beginPath();
  z.polygon.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x * w, y * h) : ctx.lineTo(x * w, y * h)));
  ctx.closePath();
  ctx.fillStyle = "rgba(100,210,255,0.15)";
  ctx.fill();
  ctx.strokeStyle = ZONE_COLOUR;
  ctx.lineWidth = (selected ? 3 : 2) * scale;
  ctx.stroke();
  const [x0, y0] = z.polygon[0]!;
  label(ctx, z.id, x0 * w + 4 * scale, y0 * h + 18 * scale, ZONE_COLOUR, Math.round(13 * scale));
}

/** Sizes a canvas's drawing buffer to its displayed size times the device pixel ratio; returns the scale for strokes and text. */
export function fitCanvas(canvas: HTMLCanvasElement, aspect: number): number {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 640;
  const w = Math.round(cssW * dpr);
  const h = Math.round((cssW / aspect) * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return dpr * Math.max(0.8, cssW / 640);
}
