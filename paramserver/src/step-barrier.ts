/**
 * The bookkeeping of a shard's step in progress: which rank has pushed which chunk, which
 * chunks every rank has pushed and are applied, which chunks a rank lent (its own slice,
 * read in place) instead of sending, and how often an applied chunk was taken back. Flat
 * typed arrays, reused from step to step: this runs for every pushed chunk.
 *
 * In async mode each rank's row is a step of its own: applied and cleared alone
 * (resetRank) once that rank has every chunk; the per-chunk counts are then unused.
 */
export class StepBarrier {
  #worldSize = 0;
  #chunkCount = 0;
  /** committed[rank * chunkCount + chunk] = 1 once that rank's chunk is in. */
  #committed = new Uint8Array(0);
  #lentChunks = new Uint8Array(0);
  #lent: Array<Float32Array | undefined> = [];
  #ranksPerChunk = new Uint16Array(0);
  #applied = new Uint8Array(0);
  #appliedCount = 0;
  /** chunksByRank[rank]: how many chunks that rank has in. */
  #chunksByRank = new Uint32Array(0);
  /** Never reset: a reader compares counts from before and after it waited. */
  #retractions = new Uint32Array(0);
  /** By rank, how often resetRank cleared its row; a push compares counts, like #retractions. */
  #rowResets = new Uint32Array(0);

  /** Starts a step; the arrays are reused when the shape is the same. */
  reset(worldSize: number, chunkCount: number): void {
    const slots = worldSize * chunkCount;
    if (this.#committed.length === slots) {
      this.#committed.fill(0);
      this.#lentChunks.fill(0);
    } else {
      this.#committed = new Uint8Array(slots);
      this.#lentChunks = new Uint8Array(slots);
    }
    if (this.#chunkCount === chunkCount) {
      this.#ranksPerChunk.fill(0);
      this.#applied.fill(0);
    } else {
      this.#ranksPerChunk = new Uint16Array(chunkCount);
      this.#applied = new Uint8Array(chunkCount);
      this.#retractions = new Uint32Array(chunkCount);
    }
    if (this.#chunksByRank.length === worldSize) this.#chunksByRank.fill(0);
    else {
      this.#chunksByRank = new Uint32Array(worldSize);
      this.#rowResets = new Uint32Array(worldSize);
    }
    this.#worldSize = worldSize;
    this.#chunkCount = chunkCount;
    this.#lent = [];
    this.#appliedCount = 0;
  }

  /** Whether `rank` has pushed every chunk of the step. */
  hasAllChunks(rank: number): boolean {
    return this.#chunksByRank[rank] === this.#chunkCount;
  }

  /** How many chunks `rank` has in. */
  chunksOf(rank: number): number {
    return this.#chunksByRank[rank]!;
  }

  /** Forgets every chunk of `rank` (async mode: its gradient was applied, or its push abandoned); other ranks' stay. */
  resetRank(rank: number): void {
    const row = rank * this.#chunkCount;
    for (let chunk = 0; chunk < this.#chunkCount; chunk++) {
      if (this.#committed[row + chunk] !== 1) continue;
      this.#committed[row + chunk] = 0;
      this.#lentChunks[row + chunk] = 0;
      this.#ranksPerChunk[chunk]!--;
    }
    this.#chunksByRank[rank] = 0;
    this.#lent[rank] = undefined;
    this.#rowResets[rank]!++;
  }

  rowResets(rank: number): number {
    return this.#rowResets[rank]!;
  }

  isCommitted(rank: number, chunk: number): boolean {
    return this.#committed[rank * this.#chunkCount + chunk] === 1;
  }

  /** Takes rank's chunk (lent from `lentSlice` when given); true when every rank has it now. */
  commit(rank: number, chunk: number, lentSlice?: Float32Array): boolean {
    const slot = rank * this.#chunkCount + chunk;
    this.#committed[slot] = 1;
    if (lentSlice !== undefined) {
      this.#lent[rank] = lentSlice;
      this.#lentChunks[slot] = 1;
    }
    this.#chunksByRank[rank]!++;
    const ranks = this.#ranksPerChunk[chunk]! + 1;
    this.#ranksPerChunk[chunk] = ranks;
    return ranks === this.#worldSize;
  }

  /** Forgets rank's chunk; if the chunk was applied it is taken back (and true is returned). */
  uncommit(rank: number, chunk: number): boolean {
    const slot = rank * this.#chunkCount + chunk;
    if (this.#committed[slot] !== 1) return false;
    this.#committed[slot] = 0;
    this.#lentChunks[slot] = 0;
    this.#chunksByRank[rank]!--;
    this.#ranksPerChunk[chunk]!--;
    if (this.#applied[chunk] !== 1) return false;
    this.#applied[chunk] = 0;
    this.#appliedCount--;
    this.#retractions[chunk]!++;
    return true;
  }

  /** What rank contributed to `chunk`: its lent slice, or `received` (its buffer of pushed chunks). */
  source(rank: number, chunk: number, received: Float32Array): Float32Array {
    return this.#lentChunks[rank * this.#chunkCount + chunk] === 1 ? this.#lent[rank]! : received;
  }

  /** The chunk's results are written; true when that completes the step. */
  markApplied(chunk: number): boolean {
    this.#applied[chunk] = 1;
    return ++this.#appliedCount === this.#chunkCount;
  }

  isApplied(chunk: number): boolean {
    return this.#applied[chunk] === 1;
  }

  retractions(chunk: number): number {
    return this.#retractions[chunk]!;
  }
}
