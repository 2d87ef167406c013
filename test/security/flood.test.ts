/**
 * Issue 14's flood against one real shard's TCP data channel, with real sockets, while two
 * ranks train through it: connections that send a HELLO and then 16 MiB of a frame type no
 * client sends, connections that stream 16 MiB chunks without a HELLO, connections that say
 * nothing, connections that say HELLO and then nothing, and more connections than the limit.
 * Every flood connection is closed by the shard; the process's RSS stays within a stated
 * bound (before the fix each 16 MiB payload was buffered, and kept, per connection); a pull
 * that waits for its version longer than the idle timeout is not cut; and the shard ends with
 * exactly the bits of the same steps without the flood.
 */
import type { Socket } from "node:net";
import { connect } from "node:net";
import type { DataServer, ParameterClient } from "@trainfleet/dataplane";
import { createParameterClient, errorFromFrame, FrameParser, FrameType, frame, startDataServer } from "@trainfleet/dataplane";
import { Code, DataPlane, maxChunkBytes, type TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import type { ShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { startShardHarness } from "@trainfleet/testing/shard/shard-harness";
import { afterAll, describe, expect, it, vi } from "vitest";

const limits = { maxConnections: 96, helloTimeoutMs: 1_000, idleTimeoutMs: 2_000 };
/** What the flood may add to this process's RSS: its payloads alone, were they buffered, are 50 x 16 MiB = 800 MiB. */
const rssBoundBytes = 200 * 1024 * 1024;
const mib16 = Buffer.alloc(maxChunkBytes, 0x7f);

const open: Array<{ close(): unknown }> = [];
afterAll(async () => {
  for (const item of open.reverse()) await item.close();
});

const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
const gradient = (rank: number, step: number) =>
  Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i * 0.37 + rank * 1.3 + step * 0.11) * 0.01);

async function shardWith(logger: Logger): Promise<{ harness: ShardHarness; data: DataServer }> {
  const harness = await startShardHarness({ range: { begin: 1000, end: 2000 } });
  open.push(harness);
  const data = await startDataServer(harness.shard, "127.0.0.1", logger, undefined, limits);
  open.push(data);
  return { harness, data };
}

function ranks(harness: ShardHarness, data: DataServer): ParameterClient[] {
  return [0, 1].map(() => {
    const client = createParameterClient({
      jobId: harness.config.jobId,
      shards: [{ index: 0, address: harness.server.address, dataAddress: data.address, ...harness.config.range }],
      chunkBytes: harness.config.chunkElements * 4,
      dataPlane: DataPlane.TCP,
    });
    open.push(client);
    return client;
  });
}

/** A raw connection; `closed` resolves once the shard has closed it, with the ERROR frames it sent first. */
function rawConnection(address: string): { socket: Socket; closed: Promise<TrainfleetError[]> } {
  const colon = address.lastIndexOf(":");
  const socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
  const errors: TrainfleetError[] = [];
  const parser = new FrameParser(
    {
      payloadTarget: (header) => new Uint8Array(header.payloadBytes),
      frame: (header, payload) => void (header.type === FrameType.ERROR && errors.push(errorFromFrame(header, payload))),
    },
    maxChunkBytes,
  );
  socket.on("data", (bytes: Buffer) => parser.feed(bytes));
  socket.on("error", () => {});
  return { socket, closed: new Promise((resolve) => socket.once("close", () => resolve(errors))) };
}

const hello = (jobId: string) => {
  const id = Buffer.from(jobId);
  return Buffer.concat([frame({ type: FrameType.HELLO, payloadBytes: id.byteLength }), id]);
};

describe("a flood against one shard's data channel", () => {
  it("closes every flood connection, keeps RSS bounded and does not cut a pull that waits, and the steps give the same bits", async () => {
    // The same three steps, undisturbed.
    const quiet = await shardWith(silentLogger);
    const [q0, q1] = ranks(quiet.harness, quiet.data);
    for (let step = 0; step < 3; step++) {
      const into = [new Float32Array(2000), new Float32Array(2000)];
      await Promise.all([
        q0!.pushThenPull({ generation: 1, step, rank: 0 }, gradient(0, step), into[0]!),
        q1!.pushThenPull({ generation: 1, step, rank: 1 }, gradient(1, step), into[1]!),
      ]);
    }
    const expected = bits(quiet.harness.shard.parameters);

    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (_fields, message) => void warnings.push(message), child: () => logger };
    const { harness, data } = await shardWith(logger);
    const [rank0, rank1] = ranks(harness, data);
    const jobId = harness.config.jobId;
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sample = () => void (rssPeak = Math.max(rssPeak, process.memoryUsage().rss));
    const sampled = (errors: TrainfleetError[]) => {
      sample();
      return errors;
    };

    // Rank 0's first push, then a pull that must wait for rank 1's: it outlasts the idle timeout below.
    await rank0!.push({ generation: 1, step: 0, rank: 0 }, gradient(0, 0));
    const into0 = new Float32Array(2000);
    const waitingPull = rank0!.pull(1, into0);

    const unknownType = Array.from({ length: 30 }, () => {
      const c = rawConnection(data.address);
      c.socket.write(hello(jobId));
      c.socket.write(frame({ type: 200 as FrameType, payloadBytes: maxChunkBytes }));
      c.socket.write(mib16);
      return c.closed;
    });
    const chunkWithoutHello = Array.from({ length: 20 }, () => {
      const c = rawConnection(data.address);
      c.socket.write(frame({ type: FrameType.PUSH_CHUNK, rank: 1, generation: 1, offset: 1000, payloadBytes: maxChunkBytes }));
      c.socket.write(mib16);
      c.socket.end(frame({ type: FrameType.PUSH_END, rank: 1 }));
      return c.closed;
    });
    const silent = Array.from({ length: 20 }, () => rawConnection(data.address).closed);
    const helloThenSilent = Array.from({ length: 5 }, () => {
      const c = rawConnection(data.address);
      c.socket.write(hello(jobId));
      return c.closed;
    });
    const refusedAtHeader = await Promise.all(unknownType.map((closed) => closed.then(sampled)));
    const unhelloed = await Promise.all(chunkWithoutHello.map((closed) => closed.then(sampled)));
    const timedOut = await Promise.all(silent);
    // The idle ones are closed: rank 0's pull has waited longer than the idle timeout by now, and still waits.
    await Promise.all(helloThenSilent);
    sample();

    const into1 = new Float32Array(2000);
    expect(await rank1!.pushThenPull({ generation: 1, step: 0, rank: 1 }, gradient(1, 0), into1)).toBe(1);
    expect(await waitingPull).toBe(1);
    for (let step = 1; step < 3; step++) {
      const into = [new Float32Array(2000), new Float32Array(2000)];
      await Promise.all([
        rank0!.pushThenPull({ generation: 1, step, rank: 0 }, gradient(0, step), into[0]!),
        rank1!.pushThenPull({ generation: 1, step, rank: 1 }, gradient(1, step), into[1]!),
      ]);
    }
    expect(bits(harness.shard.parameters)).toEqual(expected);

    for (const errors of refusedAtHeader) {
      // Told why when the reply got out before the reset; closed either way.
      for (const error of errors) expect(error.message).toMatch(/^frame type 200 is not one a client sends/);
    }
    for (const errors of unhelloed) for (const error of errors) expect(error.message).toBe("send HELLO with the job id first");
    for (const errors of timedOut) expect(errors.map((error) => error.code)).toEqual([Code.DEADLINE_EXCEEDED]);
    expect(rssPeak - rssBefore).toBeLessThan(rssBoundBytes);
    // Only the two ranks' connections are left.
    await vi.waitFor(() => expect(data.connections).toBe(2));
  }, 30_000);

  it("refuses connections beyond the limit with RESOURCE_EXHAUSTED naming the flag, and admits again once they are gone", async () => {
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (_fields, message) => void warnings.push(message), child: () => logger };
    const { harness, data } = await shardWith(logger);
    const connections = Array.from({ length: limits.maxConnections + 4 }, () => rawConnection(data.address).closed);
    const replies = await Promise.all(connections);
    const refused = replies.filter((errors) => errors.some((error) => error.code === Code.RESOURCE_EXHAUSTED));
    expect(refused.length).toBe(4);
    expect(data.connectionsRefused).toBe(4);
    expect(refused[0]![0]!.message).toBe(
      "this shard holds 96 data channel connections already; close some, or raise the shard's --data-max-connections",
    );
    expect(warnings.filter((line) => line.startsWith("data channel connection refused: 96 connections open"))).toHaveLength(1);
    // The shard's side closes once it has read each client's end.
    await vi.waitFor(() => expect(data.connections).toBe(0));
    const [rank0, rank1] = ranks(harness, data);
    const into = [new Float32Array(2000), new Float32Array(2000)];
    expect(
      await Promise.all([
        rank0!.pushThenPull({ generation: 1, step: 0, rank: 0 }, gradient(0, 0), into[0]!),
        rank1!.pushThenPull({ generation: 1, step: 0, rank: 1 }, gradient(1, 0), into[1]!),
      ]),
    ).toEqual([1, 1]);
  }, 30_000);
});
