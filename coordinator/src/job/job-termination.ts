/**
 * SIGTERM (or SIGINT): hand out no more steps, let those handed out complete, have every
 * shard write its slice at that version (a just-in-time checkpoint, waited for at most
 * checkpointWaitMs), then end the job with reason Terminated and a message naming the
 * checkpoint, or saying why there is none (noStopCheckpoint, pure: not started, no
 * checkpoint folder, async mode, or the shards need not agree on a version).
 */
import { isFinished, JobPhase } from "@trainfleet/proto";
import type { GenerationCycle } from "../generations/generation-cycle.js";
import type { Members } from "../membership/members.js";
import type { StepDispatch } from "../steps/step-dispatch.js";
import { isAsync } from "../steps/step-dispatch.js";
import type { JobEnd } from "./job-end.js";
import type { JobLifecycle } from "./job-lifecycle.js";

const asked = "the coordinator was asked to stop (SIGTERM or SIGINT)";

export interface StopState {
  started: boolean;
  /** The coordinator has a checkpoint folder. */
  checkpoints: boolean;
  async: boolean;
  /** A generation is being opened. */
  changing: boolean;
  paused: boolean;
  /** The newest complete checkpoint. */
  last: { path: string; version: number } | undefined;
}

/** The message the job ends with when no checkpoint can be taken on stop; undefined when one can. */
export function noStopCheckpoint(state: StopState): string | undefined {
  if (!state.started) return `${asked}; training had not started, so there is nothing to checkpoint`;
  if (!state.checkpoints) return `${asked}; no checkpoint was taken: the coordinator has no --checkpoint-dir`;
  if (state.async) return `${asked}; async mode takes no checkpoints (shard versions count gradients, not steps), so none was taken`;
  if (!state.changing && !state.paused) return undefined;
  const last =
    state.last === undefined ? "there is no earlier checkpoint" : `the newest is ${state.last.path} (step ${state.last.version})`;
  return `${asked} while the job was ${state.changing ? "changing generation" : "paused"}, when the shards need not agree on a version: no checkpoint was taken; ${last}`;
}

export interface TerminationOptions {
  lifecycle: JobLifecycle;
  members: Members;
  dispatch: StepDispatch;
  end: Pick<JobEnd, "fail" | "done">;
  /** How long to wait for the shards' files (default 60 s). */
  checkpointWaitMs: number | undefined;
}

/** Stops the job `cycle` runs (none: it had not started); resolves once it has ended. */
export async function terminate(cycle: GenerationCycle | undefined, options: TerminationOptions): Promise<void> {
  const { lifecycle, dispatch, end } = options;
  if (isFinished(lifecycle.phase) || dispatch.stopping) return;
  const plan = cycle?.plan;
  const checkpoints = plan?.checkpoints;
  const refused = noStopCheckpoint({
    started: plan !== undefined,
    checkpoints: checkpoints !== undefined,
    async: plan !== undefined && isAsync(plan.spec),
    changing: cycle?.opening !== undefined,
    paused: lifecycle.phase === JobPhase.PAUSED,
    last: checkpoints?.last,
  });
  if (refused !== undefined) return end.fail("Terminated", refused);
  if (plan === undefined || checkpoints === undefined) return;
  const position = plan.samples.position();
  dispatch.stopAt(position.step);
  lifecycle.setReason("Checkpointing", `${asked}: finishing the steps handed out, then checkpointing step ${position.step}`);
  const ask = (version: number) => {
    for (const shard of options.members.shards()) shard.outbox.push({ kind: { case: "checkpoint", value: { version } } });
  };
  const outcome = await checkpoints.takeOnStop(position, options.checkpointWaitMs ?? 60_000, ask, end.done());
  end.fail("Terminated", `${asked}; ${outcome}`);
}
