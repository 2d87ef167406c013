/** Table tests of when SIGTERM can take a just-in-time checkpoint, and the message when not (job/job-termination.ts). */
import { describe, expect, it } from "vitest";
import type { StopState } from "../src/job/job-termination.js";
import { noStopCheckpoint } from "../src/job/job-termination.js";

const asked = "the coordinator was asked to stop (SIGTERM or SIGINT)";
const state = (change: Partial<StopState>): StopState => ({
  started: true,
  checkpoints: true,
  async: false,
  changing: false,
  paused: false,
  last: undefined,
  ...change,
});
const last = { path: "/ckpt/checkpoint-6.json", version: 6 };

describe("noStopCheckpoint", () => {
  const cases: Array<[string, StopState, string | undefined]> = [
    ["training: a checkpoint is taken", state({}), undefined],
    ["not started", state({ started: false, checkpoints: false }), `${asked}; training had not started, so there is nothing to checkpoint`],
    ["no checkpoint folder", state({ checkpoints: false }), `${asked}; no checkpoint was taken: the coordinator has no --checkpoint-dir`],
    [
      "async mode",
      state({ async: true }),
      `${asked}; async mode takes no checkpoints (shard versions count gradients, not steps), so none was taken`,
    ],
    [
      "paused, no checkpoint yet",
      state({ paused: true }),
      `${asked} while the job was paused, when the shards need not agree on a version: no checkpoint was taken; there is no earlier checkpoint`,
    ],
    [
      "changing generation, with a checkpoint",
      state({ changing: true, last }),
      `${asked} while the job was changing generation, when the shards need not agree on a version: no checkpoint was taken; the newest is /ckpt/checkpoint-6.json (step 6)`,
    ],
    [
      "paused while changing generation: changing",
      state({ changing: true, paused: true, last }),
      `${asked} while the job was changing generation, when the shards need not agree on a version: no checkpoint was taken; the newest is /ckpt/checkpoint-6.json (step 6)`,
    ],
  ];
  it.each(cases)("%s", (_, given, expected) => {
    expect(noStopCheckpoint(given)).toBe(expected);
  });
});
