/**
 * The reduction of one chunk: contributions summed strictly in rank order, then divided by
 * the number of ranks. Float addition is not associative, so a fixed order is what makes
 * the result independent of arrival order and equal, bit for bit, to a single-process
 * reference that sums the same way.
 */
export function averageInRankOrder(contributions: readonly Float32Array[], from: number, to: number, out: Float32Array): void {
  const n = contributions.length;
  const [a, b, c] = contributions;
  if (a === undefined) throw new Error("averageInRankOrder: no contributions");
  // One pass over memory. Math.fround after each addition is what float32 addition is,
  // and keeps the sum's order fixed: ((a + b) + c) + ...
  if (n === 1) out.set(a.subarray(from, to), from);
  else if (n === 2) for (let i = from; i < to; i++) out[i] = Math.fround(a[i]! + b![i]!) / 2;
  else if (n === 3) for (let i = from; i < to; i++) out[i] = Math.fround(Math.fround(a[i]! + b![i]!) + c![i]!) / 3;
  else {
    for (let i = from; i < to; i++) {
      let sum = a[i]!;
      for (let rank = 1; rank < n; rank++) sum = Math.fround(sum + contributions[rank]![i]!);
      out[i] = sum / n;
    }
  }
}
