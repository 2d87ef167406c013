import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LedgerAudit, ledgerAuditFile } from "../src/steps/ledger-audit.js";

describe("the ledger audit", () => {
  it("records a step when it completes, with its samples rank by rank, and never a step that did not complete", () => {
    const lines: string[] = [];
    const audit = new LedgerAudit(
      (line) => lines.push(line),
      () => {},
    );
    audit.handedOut({ step: 0, epoch: 0, generation: 1, sampleIndices: [Uint32Array.of(5, 3), Uint32Array.of(9)] });
    audit.handedOut({ step: 1, epoch: 0, generation: 1, sampleIndices: [Uint32Array.of(1), Uint32Array.of(2)] });
    expect(lines).toEqual([]);
    audit.completed(0);
    // Step 1 was handed out but never completed (the job stopped): it is not in the audit.
    expect(lines).toEqual(['{"step":0,"epoch":0,"generation":1,"sampleIndices":[[5,3],[9]]}\n']);
    // A step reported twice is recorded once.
    audit.completed(0);
    expect(lines).toHaveLength(1);
  });

  it("strikes the steps after a checkpoint the job goes back to, in the file too, and records them again when they are run again", () => {
    const path = join(mkdtempSync(join(tmpdir(), "trainfleet-audit-")), "ledger.jsonl");
    const audit = ledgerAuditFile(path);
    for (const step of [0, 1, 2, 3]) {
      audit.handedOut({ step, epoch: 0, generation: 1, sampleIndices: [Uint32Array.of(step)] });
      audit.completed(step);
    }
    audit.handedOut({ step: 4, epoch: 0, generation: 1, sampleIndices: [Uint32Array.of(4)] });
    audit.rewindTo(2);
    // Step 4 was handed out before the rewind: its completion in the old run is not recorded.
    audit.completed(4);
    audit.handedOut({ step: 2, epoch: 0, generation: 2, sampleIndices: [Uint32Array.of(2)] });
    audit.completed(2);
    const steps = readFileSync(path, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { step: number; generation: number });
    expect(steps.map((r) => [r.step, r.generation])).toEqual([
      [0, 1],
      [1, 1],
      [2, 2],
    ]);
  });
});
