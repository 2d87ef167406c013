/**
 * The reduction of one chunk: contributions summed strictly in rank order, then divided by
 * the number of ranks. Float addition is not associative, so a fixed order is what makes
 * the result independent of arrival order and equal, bit for bit, to a single-process
 * reference that sums the same way.
 */
export function averageInRankOrder(contributions: readonly Float32Array[], from: number, to: number, out: Float32Array): void {
  const first = contributions[0];
  if (first === undefined) throw new Error("averageInRankOrder: no contributions");
  out.set(first.subarray(from, to), from);
  for (let rank = 1; rank < contributions.length; rank++) {
    const next = contributions[rank]!;
    for (let i = from; i < to; i++) out[i] = out[i]! + next[i]!;
  }
  const n = contributions.length;
  if (n > 1) for (let i = from; i < to; i++) out[i] = out[i]! / n;
}
