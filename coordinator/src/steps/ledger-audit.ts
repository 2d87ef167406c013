/**
 * The sample-ledger audit (`--ledger-audit FILE`): one JSON line per completed step, with
 * the sample indices its global batch consumed, rank by rank. A step is recorded when every
 * rank has reported it, not when it is handed out, so a step handed out and then abandoned
 * (a stop before it completed) never appears, and a job resumed from a checkpoint appends
 * the steps that follow it: the file says what training actually used. When training goes
 * back to a checkpoint (a lost shard, a restarted coordinator), the steps after it are
 * struck from the file (`rewindTo`): their updates were lost with the shard's memory, and
 * they are run again.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";

export interface LedgerRecord {
  step: number;
  epoch: number;
  generation: number;
  /** The indices into the training set, one array per rank. */
  sampleIndices: number[][];
}

export class LedgerAudit {
  readonly #write: (line: string) => void;
  readonly #strike: (fromStep: number) => void;
  /** Steps handed out and not yet complete. */
  readonly #pending = new Map<number, LedgerRecord>();

  /** `write` appends one line; `strike` removes the lines of steps from `fromStep` on. */
  constructor(write: (line: string) => void, strike: (fromStep: number) => void) {
    this.#write = write;
    this.#strike = strike;
  }

  /** Training goes on from step `step` again: recorded steps from there on are struck, and those handed out forgotten. */
  rewindTo(step: number): void {
    this.#pending.clear();
    this.#strike(step);
  }

  handedOut(record: { step: number; epoch: number; generation: number; sampleIndices: readonly Uint32Array[] }): void {
    this.#pending.set(record.step, { ...record, sampleIndices: record.sampleIndices.map((indices) => Array.from(indices)) });
  }

  completed(step: number): void {
    const record = this.#pending.get(step);
    if (record === undefined) return;
    this.#pending.delete(step);
    this.#write(`${JSON.stringify(record)}\n`);
  }
}

/** An audit appended to `path`, a line at a time (a debug option: durability over speed). */
export function ledgerAuditFile(path: string): LedgerAudit {
  const strike = (fromStep: number) => {
    if (!existsSync(path)) return;
    const kept = readFileSync(path, "utf8")
      .split("\n")
      .filter((line) => line !== "" && (JSON.parse(line) as LedgerRecord).step < fromStep);
    const temporary = `${path}.tmp-${process.pid}`;
    writeFileSync(temporary, kept.map((line) => `${line}\n`).join(""));
    renameSync(temporary, path);
  };
  return new LedgerAudit((line) => appendFileSync(path, line), strike);
}
