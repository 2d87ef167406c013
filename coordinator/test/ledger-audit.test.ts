import { describe, expect, it } from "vitest";
import { LedgerAudit } from "../src/ledger-audit.js";

describe("the ledger audit", () => {
  it("records a step when it completes, with its samples rank by rank, and never a step that did not complete", () => {
    const lines: string[] = [];
    const audit = new LedgerAudit((line) => lines.push(line));
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
});
