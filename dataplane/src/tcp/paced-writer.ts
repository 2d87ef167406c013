/**
 * Writes to a data channel socket in order, handing a TLS socket one buffer at a time. A
 * TLS socket that is still sending queues what else is written meanwhile and later encrypts
 * it all in one call that first copies every queued buffer into one fresh block: with a
 * whole gradient or parameter vector queued (tens of MiB), that copy and its page faults
 * cost more than the encryption. Handing the socket the next buffer only once it has taken
 * the last ('drain') keeps each encryption to one chunk, read where it lies. A plaintext
 * socket takes every write as it comes: the kernel sends from the buffers themselves.
 *
 * The buffers are held, not copied, until written, as the socket itself would hold them:
 * callers keep them unchanged until the reply that follows them has come.
 */
import type { Socket } from "node:net";

export type Write = (data: Uint8Array) => void;

export function pacedWriter(socket: Socket, tls: boolean): Write {
  if (!tls) return (data) => void socket.write(data);
  const queue: Uint8Array[] = [];
  let waiting = false;
  const flush = () => {
    waiting = false;
    while (queue.length > 0 && !socket.destroyed) {
      if (!socket.write(queue.shift()!)) {
        waiting = true;
        socket.once("drain", flush);
        return;
      }
    }
  };
  // A destroyed socket drops what is queued (its requests have failed).
  socket.once("close", () => {
    queue.length = 0;
    socket.off("drain", flush);
  });
  return (data) => {
    if (waiting) queue.push(data);
    else if (!socket.write(data)) {
      waiting = true;
      socket.once("drain", flush);
    }
  };
}
