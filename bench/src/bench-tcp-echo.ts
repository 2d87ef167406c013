/**
 * Benchmark child: the raw-TCP baseline. `server` echoes every byte back; `client`
 * sends `bytes` and waits for them all to return, `rounds` times.
 * argv: server | client port bytes rounds
 */
import { connect, createServer } from "node:net";

const [mode, ...args] = process.argv.slice(2);
if (mode === "server") {
  const server = createServer((socket) => socket.pipe(socket)).listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.send!({ port: typeof address === "object" && address !== null ? address.port : 0 });
  });
  process.on("message", () => process.send!({}, () => process.exit(0)));
} else {
  const [port, bytes, rounds] = args.map(Number) as [number, number, number];
  const payload = Buffer.alloc(bytes, 7);
  const socket = connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once("connect", resolve));
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    let received = 0;
    const back = new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        received += chunk.length;
        if (received >= bytes) {
          socket.off("data", onData);
          resolve();
        }
      };
      socket.on("data", onData);
    });
    socket.write(payload);
    await back;
    times.push(performance.now() - started);
  }
  socket.end();
  process.send!({ times }, () => process.disconnect());
}
