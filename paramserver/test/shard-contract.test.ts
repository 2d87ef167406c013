/**
 * The parameter-server shard's contract, over its real gRPC service and its real TCP data
 * channel on 127.0.0.1: bad
 * pushes get a clear error naming the field and change nothing; pushes are idempotent;
 * a step is applied once every rank is in, and versions only go up.
 */

import { createParameterClient, encodeBfloat16, errorFromFrame, FrameType } from "@trainfleet/dataplane";
import { Code, DataPlane, WireDtype } from "@trainfleet/proto";
import { rejection } from "@trainfleet/testing/rejection";
import { RawConnection, rawTcpPush } from "@trainfleet/testing/shard/raw-data-channel";
import type { ShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { gradientChunks, startShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

let harness: ShardHarness;
beforeEach(async () => (harness = await startShardHarness()));
afterEach(async () => harness.close());

function snapshot(h: ShardHarness) {
  return { version: h.shard.version, parameters: Float32Array.from(h.shard.parameters) };
}

type Push = (
  h: ShardHarness,
  messages: ReturnType<typeof gradientChunks>,
) => Promise<{ chunksAccepted: number; chunksDuplicate: number; version: number }>;

// The same contract over both data planes: gRPC streams and the raw TCP channel.
const transports: Array<[string, Push]> = [
  ["gRPC", (h, messages) => h.client.push(messages)],
  ["the TCP data channel", (h, messages) => rawTcpPush(h.data.address, messages)],
];

describe.each(transports)("over %s", (_transport, push) => {
  describe("a bad push gets a clear error naming the field, and the shard is unchanged", () => {
    const cases: Array<[string, (h: ShardHarness) => ReturnType<typeof gradientChunks>, Code, string, RegExp]> = [
      [
        "a gradient chunk of the wrong length",
        (h) =>
          gradientChunks(h.config, { step: 0, rank: 0 }, () => 1).map((m, i) => (i === 1 ? { ...m, data: m.data.subarray(0, 12) } : m)),
        Code.INVALID_ARGUMENT,
        "data",
        /must hold 256 float32 values \(1024 bytes\), got 12 bytes/,
      ],
      [
        "a NaN in the gradient",
        (h) => gradientChunks(h.config, { step: 0, rank: 1 }, (i) => (i === 1700 ? Number.NaN : 1)),
        Code.INVALID_ARGUMENT,
        "data",
        /holds NaN at element 1700 \(.+\); nothing was applied/,
      ],
      [
        "an infinity in the gradient",
        (h) => gradientChunks(h.config, { step: 0, rank: 1 }, (i) => (i === 1999 ? Number.POSITIVE_INFINITY : 1)),
        Code.INVALID_ARGUMENT,
        "data",
        /holds Infinity at element 1999/,
      ],
      [
        "an unknown rank",
        (h) => gradientChunks(h.config, { step: 0, rank: 2 }, () => 1),
        Code.INVALID_ARGUMENT,
        "rank",
        /rank 2 is not in generation 1, which has ranks 0\.\.1/,
      ],
      [
        "a stale step",
        (h) => gradientChunks(h.config, { step: 0, rank: 0 }, () => 1),
        Code.FAILED_PRECONDITION,
        "step",
        /step 0 is stale; the shard is at version 2, so pull the parameters and push the gradient for step 2/,
      ],
      [
        "a step from the future",
        (h) => gradientChunks(h.config, { step: 5, rank: 0 }, () => 1),
        Code.FAILED_PRECONDITION,
        "step",
        /step 5 is from the future/,
      ],
      [
        "an offset that is not a chunk key",
        (h) => gradientChunks(h.config, { step: 0, rank: 0 }, () => 1).map((m, i) => (i === 0 ? { ...m, offset: 1001n } : m)),
        Code.INVALID_ARGUMENT,
        "offset",
        /offset 1001 is not a chunk key of this shard/,
      ],
      [
        "another job's gradient",
        (h) => gradientChunks(h.config, { step: 0, rank: 0, jobId: "job-b" }, () => 1),
        Code.FAILED_PRECONDITION,
        "job_id",
        /serves job "job-a", not "job-b"/,
      ],
      [
        "another generation's gradient",
        (h) => gradientChunks(h.config, { step: 0, rank: 0, generation: 7 }, () => 1),
        Code.FAILED_PRECONDITION,
        "generation",
        /at generation 1, the push is for 7/,
      ],
    ];

    it.each(cases)("%s", async (name, messages, code, field, message) => {
      if (name === "a stale step") {
        // Move the shard to version 2 first, so that step 0 is two versions behind.
        for (const step of [0, 1])
          for (const rank of [0, 1])
            await push(
              harness,
              gradientChunks(harness.config, { step, rank }, () => 0.5),
            );
        expect(harness.shard.version).toBe(2);
      }
      // Rank 0's good gradient is already in for this step: a bad push must not disturb it.
      if (name !== "a stale step")
        await push(
          harness,
          gradientChunks(harness.config, { step: 0, rank: 0 }, () => 0.25),
        );
      const before = snapshot(harness);
      const error = await rejection(push(harness, messages(harness)));
      expect(error.code).toBe(code);
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
      expect(error.message.startsWith(`${field}: `)).toBe(true);
      expect(snapshot(harness)).toEqual(before);
      if (name === "a stale step") return;
      // The shard still works: the missing rank's good push completes the step exactly as if the bad one never came.
      await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 1 }, () => 0.75),
      );
      expect(harness.shard.version).toBe(1);
      const expected = Float32Array.from(before.parameters, (p) => p - 0.1 * 0.5);
      expect(harness.shard.parameters).toEqual(expected);
    });
  });

  describe("generations", () => {
    it("a shard closed by a new generation's assignment refuses pushes UNAVAILABLE and changes nothing; once open it takes them", async () => {
      await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 0 }, () => 0.25),
      );
      const next = { ...harness.config, generation: 2 };
      harness.shard.configure(next);
      const before = snapshot(harness);
      const error = await rejection(
        push(
          harness,
          gradientChunks(next, { step: 0, rank: 0 }, () => 1),
        ),
      );
      expect(error.code).toBe(Code.UNAVAILABLE);
      expect(error.message).toMatch(
        /changing to generation 2 and takes no push until the coordinator opens it; follow the coordinator's next assignment/,
      );
      expect(snapshot(harness)).toEqual(before);
      harness.shard.openGeneration(2, 0);
      // Generation 1's step in progress (rank 0's 0.25) was dropped: generation 2's ranks push it whole.
      await push(
        harness,
        gradientChunks(next, { step: 0, rank: 0 }, () => 1),
      );
      expect(harness.shard.version).toBe(0);
      await push(
        harness,
        gradientChunks(next, { step: 0, rank: 1 }, () => 3),
      );
      expect(harness.shard.version).toBe(1);
      expect(harness.shard.parameters).toEqual(Float32Array.from(before.parameters, (p) => p - 0.1 * 2));
    });
  });

  describe("pushes", () => {
    it("are idempotent on (step, rank, offset): a retried push is acknowledged and counted once", async () => {
      const first = await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1),
      );
      expect(first).toMatchObject({ chunksAccepted: 4, chunksDuplicate: 0, version: 0 });
      const retry = await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1000),
      );
      expect(retry).toMatchObject({ chunksAccepted: 0, chunksDuplicate: 4, version: 0 });
      const before = Float32Array.from(harness.shard.parameters);
      await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 1 }, () => 3),
      );
      // The average is (1 + 3) / 2 = 2, not influenced by the retry's 1000.
      expect(harness.shard.parameters).toEqual(Float32Array.from(before, (p) => p - 0.1 * 2));
      // A retry of the step just applied (the reply was lost) is also safe.
      const late = await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 1 }, () => 3),
      );
      expect(late).toMatchObject({ chunksAccepted: 0, chunksDuplicate: 4, version: 1 });
    });

    it("apply a step only when every rank is in, and each step raises the version by one", async () => {
      const versions: number[] = [];
      for (let step = 0; step < 3; step++) {
        await push(
          harness,
          gradientChunks(harness.config, { step, rank: 1 }, () => 1),
        );
        versions.push(harness.shard.version);
        await push(
          harness,
          gradientChunks(harness.config, { step, rank: 0 }, () => 1),
        );
        versions.push(harness.shard.version);
      }
      expect(versions).toEqual([0, 1, 1, 2, 2, 3]);
    });

    it("can arrive in pieces: chunks of one rank over several streams", async () => {
      const chunks = gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1);
      await push(harness, chunks.slice(0, 2));
      await push(harness, chunks.slice(2));
      await push(
        harness,
        gradientChunks(harness.config, { step: 0, rank: 1 }, () => 1),
      );
      expect(harness.shard.version).toBe(1);
    });
  });
});

describe("16-bit values on the TCP data channel", () => {
  function bfloat16Chunks(fill: (i: number) => number, rank: number) {
    return gradientChunks(harness.config, { step: 0, rank }, fill).map((m) => {
      const values = new Float32Array(m.data.buffer.slice(m.data.byteOffset, m.data.byteOffset + m.data.byteLength));
      const wire = new Uint16Array(values.length);
      encodeBfloat16(values, 0, values.length, wire);
      return { ...m, data: new Uint8Array(wire.buffer), dtype: WireDtype.BFLOAT16 };
    });
  }

  it("are decoded into float32 before they are reduced", async () => {
    const before = Float32Array.from(harness.shard.parameters);
    // 1 + 2^-10 is not a bfloat16: it travels as 1.
    await rawTcpPush(
      harness.data.address,
      bfloat16Chunks(() => 1 + 2 ** -10, 0),
    );
    await rawTcpPush(
      harness.data.address,
      bfloat16Chunks(() => 3, 1),
    );
    expect(harness.shard.version).toBe(1);
    expect(harness.shard.parameters).toEqual(Float32Array.from(before, (p) => p - 0.1 * 2));
  });

  it("are checked like float32: a NaN is rejected naming data, and nothing changes", async () => {
    const before = snapshot(harness);
    const error = await rejection(
      rawTcpPush(
        harness.data.address,
        bfloat16Chunks((i) => (i === 1500 ? Number.NaN : 1), 0),
      ),
    );
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "data"]);
    expect(error.message).toMatch(/holds NaN at element 1500/);
    expect(snapshot(harness)).toEqual(before);
  });

  it("in an unknown format are refused naming dtype", async () => {
    const chunks = gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1).map((m) => ({ ...m, dtype: 9 }));
    const error = await rejection(rawTcpPush(harness.data.address, chunks));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "dtype"]);
    expect(error.message).toBe("dtype: 9 is not a wire dtype: use 1 (float32), 2 (bfloat16) or 3 (float16)");
  });
});

/** Resolves once `condition` holds, checking after each turn of the event loop (bounded). */
async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 100_000) throw new Error("condition never held");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("the TCP channel's receive and streaming", () => {
  it("has the kernel write pushed bytes in place, into the shard's buffers", async () => {
    await rawTcpPush(
      harness.data.address,
      gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1),
    );
    expect(harness.data.connectionsReadInPlace).toBe(1);
  });

  it("streams each chunk of the next version as soon as every rank has pushed it, before the step is whole", async () => {
    const before = Float32Array.from(harness.shard.parameters);
    const puller = await RawConnection.open(harness.data.address, "job-a");
    try {
      puller.pull(1);
      await rawTcpPush(
        harness.data.address,
        gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1),
      );
      const rank1 = gradientChunks(harness.config, { step: 0, rank: 1 }, () => 3);
      await rawTcpPush(harness.data.address, rank1.slice(0, 2));
      const early = [await puller.next(), await puller.next()];
      // Chunks 0 and 1 came back while the step (and so the shard's version) is not whole.
      expect(harness.shard.version).toBe(0);
      expect(harness.shard.parameters).toEqual(before);
      expect(early.map((f) => [f.header.type, f.header.step, f.header.offset])).toEqual([
        [FrameType.PARAMS, 1, 1000],
        [FrameType.PARAMS, 1, 1256],
      ]);
      expect(new Float32Array(early[0]!.payload.buffer)).toEqual(Float32Array.from(before.subarray(0, 256), (p) => p - 0.1 * 2));
      await rawTcpPush(harness.data.address, rank1.slice(2));
      const rest = [await puller.next(), await puller.next(), await puller.next()];
      expect(rest.map((f) => [f.header.type, f.header.step, f.header.offset])).toEqual([
        [FrameType.PARAMS, 1, 1512],
        [FrameType.PARAMS, 1, 1768],
        [FrameType.PULL_END, 1, 0],
      ]);
      expect(harness.shard.version).toBe(1);
      expect(harness.shard.parameters).toEqual(Float32Array.from(before, (p) => p - 0.1 * 2));
    } finally {
      puller.close();
    }
  });

  it("takes back the chunks a push rejected part-way had completed: a pull that had them is aborted, and the step completes as if that push never came", async () => {
    const before = Float32Array.from(harness.shard.parameters);
    const puller = await RawConnection.open(harness.data.address, "job-a");
    try {
      puller.pull(1);
      await rawTcpPush(
        harness.data.address,
        gradientChunks(harness.config, { step: 0, rank: 0 }, () => 0.25),
      );
      // Rank 1's chunks 0 and 1 complete the step's first two chunks; chunk 2 holds a NaN.
      const bad = await rejection(
        rawTcpPush(
          harness.data.address,
          gradientChunks(harness.config, { step: 0, rank: 1 }, (i) => (i === 1700 ? Number.NaN : 1)),
        ),
      );
      expect([bad.code, bad.field]).toEqual([Code.INVALID_ARGUMENT, "data"]);
      const frames = [await puller.next(), await puller.next(), await puller.next()];
      expect(frames.map((f) => [f.header.type, f.header.offset])).toEqual([
        [FrameType.PARAMS, 1000],
        [FrameType.PARAMS, 1256],
        [FrameType.ERROR, 0],
      ]);
      const aborted = errorFromFrame(frames[2]!.header, frames[2]!.payload);
      expect(aborted.code).toBe(Code.ABORTED);
      expect(aborted.message).toMatch(/taken back after it was sent .*pull again/);
      expect(harness.shard.version).toBe(0);
      expect(harness.shard.parameters).toEqual(before);
      await rawTcpPush(
        harness.data.address,
        gradientChunks(harness.config, { step: 0, rank: 1 }, () => 0.75),
      );
      expect(harness.shard.version).toBe(1);
      expect(harness.shard.parameters).toEqual(Float32Array.from(before, (p) => p - 0.1 * 0.5));
    } finally {
      puller.close();
    }
  });

  it("ends a pull that waits for a push sent after it on the same connection when that push is rejected; the push's own error follows", async () => {
    const connection = await RawConnection.open(harness.data.address, "job-a");
    try {
      connection.pull(1);
      connection.push(gradientChunks(harness.config, { step: 0, rank: 1 }, (i) => (i === 1300 ? Number.NaN : 1)));
      const [pull, push] = [await connection.next(), await connection.next()];
      expect([pull.header.type, push.header.type]).toEqual([FrameType.ERROR, FrameType.ERROR]);
      expect(errorFromFrame(pull.header, pull.payload).message).toMatch(
        /^the push this pull waits for was rejected \(data: .*NaN at element 1300/,
      );
      expect(errorFromFrame(pull.header, pull.payload).code).toBe(Code.ABORTED);
      expect(errorFromFrame(push.header, push.payload).code).toBe(Code.INVALID_ARGUMENT);
    } finally {
      connection.close();
    }
  });

  it("reports a rejected push, not the pull it ended, through the parameter client's pushThenPull", async () => {
    const shards = [{ index: 0, address: harness.server.address, dataAddress: harness.data.address, ...harness.config.range }];
    const client = createParameterClient({
      jobId: "job-a",
      shards,
      chunkBytes: harness.config.chunkElements * 4,
      dataPlane: DataPlane.TCP,
    });
    try {
      const gradient = new Float32Array(2000).fill(1);
      gradient[1300] = Number.NaN;
      const error = await rejection(client.pushThenPull({ generation: 1, step: 0, rank: 0 }, gradient, new Float32Array(2000)));
      expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "data"]);
      expect(harness.shard.version).toBe(0);
    } finally {
      client.close();
    }
  });
});

describe("pipelined requests on the TCP channel", () => {
  it("a pull sent with a push waits for the step; the parameters and the ack come back in order", async () => {
    const shards = [{ index: 0, address: harness.server.address, dataAddress: harness.data.address, ...harness.config.range }];
    const client = createParameterClient({
      jobId: "job-a",
      shards,
      chunkBytes: harness.config.chunkElements * 4,
      dataPlane: DataPlane.TCP,
    });
    try {
      const before = Float32Array.from(harness.shard.parameters);
      // The client addresses the whole vector; this shard owns [1000, 2000) of it.
      const gradient = new Float32Array(2000).fill(1);
      const into = new Float32Array(2000);
      let settled = false;
      const rank0 = client.pushThenPull({ generation: 1, step: 0, rank: 0 }, gradient, into).finally(() => (settled = true));
      await until(() => harness.shard.stats.bytesIn >= 4000);
      expect(settled).toBe(false);
      await harness.client.push(gradientChunks(harness.config, { step: 0, rank: 1 }, () => 3));
      expect(await rank0).toBe(1);
      expect(into.subarray(1000, 2000)).toEqual(Float32Array.from(before, (p) => p - 0.1 * 2));
    } finally {
      client.close();
    }
  });
});

describe("pulls", () => {
  it("wait for the version asked for, then stream the whole range", async () => {
    const pulled = (async () => {
      const chunks = [];
      for await (const chunk of harness.client.pull({ jobId: "job-a", minVersion: 1 })) chunks.push(chunk);
      return chunks;
    })();
    for (const rank of [0, 1]) await harness.client.push(gradientChunks(harness.config, { step: 0, rank }, () => 1));
    const chunks = await pulled;
    expect(chunks.map((c) => [c.version, Number(c.offset), c.data.byteLength])).toEqual([
      [1, 1000, 1024],
      [1, 1256, 1024],
      [1, 1512, 1024],
      [1, 1768, 928],
    ]);
  });

  it("for another job get an error naming job_id, over the stream", async () => {
    const error = await rejection(
      (async () => {
        for await (const _ of harness.client.pull({ jobId: "job-b", minVersion: 0 })) void _;
      })(),
    );
    expect([error.code, error.field, error.message]).toEqual([
      Code.FAILED_PRECONDITION,
      "job_id",
      'job_id: this shard serves job "job-a", not "job-b"',
    ]);
  });

  it("give up when the caller's deadline passes", async () => {
    const error = await rejection(
      (async () => {
        for await (const _ of harness.client.pull({ jobId: "job-a", minVersion: 5 }, { timeoutMs: 200 })) void _;
      })(),
    );
    expect(error.code).toBe(Code.DEADLINE_EXCEEDED);
  });
});

describe("pulls across generations", () => {
  it("over gRPC, waiting since the generation before, are ABORTED when a new one is assigned", async () => {
    const pulled = rejection(
      (async () => {
        for await (const _ of harness.client.pull({ jobId: "job-a", minVersion: 1 })) void _;
      })(),
    );
    await harness.client.push(gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1));
    harness.shard.configure({ ...harness.config, generation: 2 });
    const error = await pulled;
    expect(error.code).toBe(Code.ABORTED);
    expect(error.message).toMatch(/the job moved to generation 2; pull again after your next assignment/);
  });

  it("over the TCP channel, part-way through, are ABORTED when a new generation is assigned", async () => {
    const puller = await RawConnection.open(harness.data.address, "job-a");
    try {
      puller.pull(1);
      await rawTcpPush(
        harness.data.address,
        gradientChunks(harness.config, { step: 0, rank: 0 }, () => 1),
      );
      await rawTcpPush(harness.data.address, gradientChunks(harness.config, { step: 0, rank: 1 }, () => 3).slice(0, 2));
      const early = [await puller.next(), await puller.next()];
      expect(early.map((f) => f.header.type)).toEqual([FrameType.PARAMS, FrameType.PARAMS]);
      harness.shard.configure({ ...harness.config, generation: 2, worldSize: 1 });
      const ended = await puller.next();
      expect(ended.header.type).toBe(FrameType.ERROR);
      const error = errorFromFrame(ended.header, ended.payload);
      expect([error.code, error.message]).toEqual([Code.ABORTED, "the job moved to generation 2; pull again after your next assignment"]);
    } finally {
      puller.close();
    }
  });

  it("in 16 bits after the shard went back a version get the version computed again, not the one left", async () => {
    const puller = await RawConnection.open(harness.data.address, "job-a");
    const pullBfloat16 = async () => {
      puller.pull(1, WireDtype.BFLOAT16);
      const frames = [];
      for (let f = await puller.next(); f.header.type === FrameType.PARAMS; f = await puller.next()) frames.push(f);
      return frames.map((f) => Array.from(new Uint16Array(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength / 2)));
    };
    const expected = () => {
      const wire = new Uint16Array(harness.shard.parameters.length);
      encodeBfloat16(harness.shard.parameters, 0, wire.length, wire);
      return [0, 256, 512, 768].map((begin) => Array.from(wire.subarray(begin, Math.min(wire.length, begin + 256))));
    };
    try {
      // Version 1, from generation 1: pulled, so each chunk's encoding is cached.
      for (const rank of [0, 1]) await harness.client.push(gradientChunks(harness.config, { step: 0, rank }, () => 1 + rank));
      const first = await pullBfloat16();
      expect(first).toEqual(expected());
      // The other shard never got there: generation 2 goes back to version 0 and computes 1 again, from other gradients.
      const next = { ...harness.config, generation: 2 };
      harness.shard.configure(next);
      harness.shard.openGeneration(2, 0);
      for (const rank of [0, 1]) await harness.client.push(gradientChunks(next, { step: 0, rank }, () => 5 + rank));
      const again = await pullBfloat16();
      expect(again).toEqual(expected());
      expect(again).not.toEqual(first);
    } finally {
      puller.close();
    }
  });
});
