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

/**
 * Cross-class merge, after {@link nms}: one object seen as two classes (a van as car and as
 * truck) keeps its best box. `groupOf[class]` names the group a class merges within (-1: it
 * merges with none); a box overlapping a better box of its group by more than `iouThreshold`
 * is dropped. Keeps the input order (best first).
 */
export function mergeClasses(dets: readonly Detection[], groupOf: Int32Array, iouThreshold: number): Detection[] {
  const order = dets.map((_, i) => i).sort((a, b) => dets[b]!.score - dets[a]!.score || a - b);
  const keptByGroup = new Map<number, Detection[]>();
  const drop = new Set<number>();
  for (const i of order) {
    const d = dets[i]!;
    const g = groupOf[d.class_id] ?? -1;
    if (g < 0) continue;
    const kept = keptByGroup.get(g) ?? [];
    if (kept.some((k) => iou(k, d) > iouThreshold)) {
      drop.add(i);
      continue;
    }
    kept.push(d);
    keptByGroup.set(g, kept);
  }
  return dets.filter((_, i) => !drop.has(i));
}
