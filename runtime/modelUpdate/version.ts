/**
 * Compares two model versions as dotted numbers, so "1.10.0" is newer than "1.9.2": parts split on
 * ".", "-", "+" and "_"; numeric parts compare as numbers, others as text, and a number is newer
 * than text ("1.2.0" > "1.2.rc1"); a version with more parts is newer when the common ones tie.
 * Returns < 0, 0 or > 0 as `a` is older than, the same as or newer than `b`.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-+_]/);
  const pb = b.split(/[.\-+_]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (nx !== ny) {
      return nx ? 1 : -1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}
