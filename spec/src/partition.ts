/** How the flattened parameters are cut: shard ranges, and chunks within a range. */

export interface Range {
  begin: number;
  end: number;
}

/** `shards` contiguous ranges of nearly equal size covering [0, parameterCount). */
export function shardRanges(parameterCount: number, shards: number): Range[] {
  const ranges: Range[] = [];
  for (let i = 0; i < shards; i++) {
    ranges.push({ begin: Math.floor((parameterCount * i) / shards), end: Math.floor((parameterCount * (i + 1)) / shards) });
  }
  return ranges;
}

/** The chunks of `range`: consecutive runs of at most `chunkElements`, keyed by offset. */
export function chunkRanges(range: Range, chunkElements: number): Range[] {
  const chunks: Range[] = [];
  for (let begin = range.begin; begin < range.end; begin += chunkElements) {
    chunks.push({ begin, end: Math.min(range.end, begin + chunkElements) });
  }
  return chunks;
}
