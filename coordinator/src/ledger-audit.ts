/**
 * The sample-ledger audit (`--ledger-audit FILE`): one JSON line per completed step, with
 * the sample indices its global batch consumed, rank by rank. A step is recorded when every
 * rank has reported it, not when it is handed out, so a step handed out and then abandoned
 * (a stop before it completed) never appears, and a job resumed from a checkpoint appends
 * the steps that follow it: the file says what training actually used.
 */
import { appendFileSync } from "node:fs";

export interface LedgerRecord {
  step: number;
  epoch: number;
  generation: number;
  /** The indices into the training set, one array per rank. */
  sampleIndices: number[][];
}

export class LedgerAudit {
  readonly #write: (line: string) => void;
  /** Steps handed out and not yet complete. */
  readonly #pending = new Map<number, LedgerRecord>();

  constructor(write: (line: string) => void) {
    this.#write = write;
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
  return new LedgerAudit((line) => appendFileSync(path, line));
}
