import { isFinished, JobPhase } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { transition } from "../src/job/job-phase.js";

describe("the job's state machine", () => {
  it("runs pending -> running -> evaluating -> succeeded", () => {
    let phase: JobPhase = JobPhase.PENDING;
    phase = transition(phase, "start");
    expect(phase).toBe(JobPhase.RUNNING);
    phase = transition(phase, "trainingDone");
    expect(phase).toBe(JobPhase.EVALUATING);
    phase = transition(phase, "evaluationDone");
    expect(phase).toBe(JobPhase.SUCCEEDED);
    expect(isFinished(phase)).toBe(true);
  });

  it("pauses below min_workers from pending, running or evaluating, and resumes to running", () => {
    for (const phase of [JobPhase.PENDING, JobPhase.RUNNING, JobPhase.EVALUATING]) expect(transition(phase, "pause")).toBe(JobPhase.PAUSED);
    expect(transition(JobPhase.PAUSED, "resume")).toBe(JobPhase.RUNNING);
    expect(() => transition(JobPhase.RUNNING, "resume")).toThrow(/does not allow "resume"/);
    expect(() => transition(JobPhase.PAUSED, "trainingDone")).toThrow();
  });

  it("can fail from any unfinished phase, and nothing leaves a finished one", () => {
    for (const phase of [JobPhase.PENDING, JobPhase.RUNNING, JobPhase.PAUSED, JobPhase.EVALUATING])
      expect(transition(phase, "fail")).toBe(JobPhase.FAILED);
    expect(() => transition(JobPhase.SUCCEEDED, "fail")).toThrow(/does not allow "fail"/);
    expect(() => transition(JobPhase.FAILED, "start")).toThrow(/does not allow "start"/);
    expect(() => transition(JobPhase.PENDING, "trainingDone")).toThrow();
  });
});
