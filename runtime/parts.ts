import type { PartContext } from "./daemon.js";
import type { Part } from "./part.js";

/**
 * The composition root's wiring: which parts a config asks for, in start order (stopped in
 * reverse). Each feature adds its parts here and nowhere else.
 */
export function buildParts(ctx: PartContext): Part[] {
  const parts: Part[] = [];
  void ctx;
  return parts;
}
