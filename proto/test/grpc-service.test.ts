/**
 * The handler adapter over a real grpc-js server: a client stream's messages reach the
 * handler in order on one call, and every call still open when the server gives up its
 * grace period sees its signal abort, while the calls that ended before are left alone.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CoordinatorService } from "../src/gen/trainfleet/v1/coordinator_pb.js";
import type { ServiceClient } from "../src/grpc-client.js";
import { createClient } from "../src/grpc-client.js";
import type { RunningServer } from "../src/grpc-server.js";
import { startServer } from "../src/grpc-server.js";
import type { CallContext, ServiceHandlers } from "../src/grpc-service.js";
import { addService } from "../src/grpc-service.js";

type Handlers = ServiceHandlers<(typeof CoordinatorService)["method"]>;

let server: RunningServer | undefined;
let client: ServiceClient<(typeof CoordinatorService)["method"]> | undefined;
afterEach(async () => {
  client?.close();
  await server?.close(0);
});

/** A server whose handlers are `handlers` (the other methods refuse), and a plaintext client of it. */
async function serve(handlers: Partial<Handlers>) {
  const unused = async () => {
    throw new Error("not used by this test");
  };
  const all = Object.fromEntries(CoordinatorService.methods.map((method) => [method.localName, unused]));
  server = await startServer("127.0.0.1:0", (grpcServer, signal) =>
    addService(grpcServer, CoordinatorService, { ...all, ...handlers } as unknown as Handlers, signal),
  );
  client = createClient(CoordinatorService, server.address);
  return { server, client };
}

describe("addService", () => {
  it("hands a client stream's messages to the handler in order, on one call", async () => {
    const received: number[] = [];
    const { client } = await serve({
      async reportProgress(requests) {
        for await (const request of requests) received.push(request.step);
        return {};
      },
    });
    await client.reportProgress([1, 2, 3, 4].map((step) => ({ memberId: "worker-0", step })));
    expect(received).toEqual([1, 2, 3, 4]);
  });

  it("aborts the signal of every call still open when the server closes, and of none that ended", async () => {
    const contexts: CallContext[] = [];
    let opened: () => void = () => {};
    const allOpen = new Promise<void>((resolve) => (opened = resolve));
    const { server, client } = await serve({
      async heartbeat(_, context) {
        contexts.push(context);
        return { leaseExpiresUnixMs: 1n };
      },
      async *assignments(_, context) {
        contexts.push(context);
        if (contexts.length === 4) opened();
        await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
      },
    });
    await client.heartbeat({ memberId: "worker-0" });
    const streams = [1, 2, 3].map(async () => {
      for await (const _ of client.assignments({ memberId: "worker-0" }));
    });
    for (const stream of streams) stream.catch(() => {});
    await allOpen;
    await server.close(0);
    expect(contexts.map((context) => context.signal.aborted)).toEqual([false, true, true, true]);
  });
});
