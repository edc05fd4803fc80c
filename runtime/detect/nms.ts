import { iou, type Detection } from "./types.js";

/**
 * Class-aware non-maximum suppression: within each class, keeps the best box and drops every
 * box overlapping a kept one by more than `iouThreshold`. Boxes of different classes never
 * suppress each other. Returns at most `maxDetections`, best first.
 */
export function nms(dets: readonly Detection[], iouThreshold: number, maxDetections = 300): Detection[] {
  // Stable sort: equal scores keep decoder order, so results are deterministic.
  const order = dets.map((_, i) => i).sort((a, b) => dets[b]!.score - dets[a]!.score || a - b);
  const keptByClass = new Map<number, Detection[]>();
  const kept: Detection[] = [];
  for (const i of order) {
    const d = dets[i]!;
    if (!(d.x2 > d.x1 && d.y2 > d.y1)) continue;
    let same = keptByClass.get(d.class_id);
    if (same?.some((k) => iou(k, d) > iouThreshold)) continue;
    if (!same) {
      same = [];
      keptByClass.set(d.class_id, same);
    }
    same.push(d);
    kept.push(d);
    if (kept.length >= maxDetections) break;
  }
  return kept;
}
