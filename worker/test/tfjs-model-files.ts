/**
 * Model files written by tf.js itself, for the model tests: a real HTTP server on
 * 127.0.0.1 that takes what `model.save("http://...")` uploads (tf.js's own multipart
 * model.json + model.weights.bin) into a folder, and serves folders back to
 * `tf.loadLayersModel("http://...")`.
 */
import { once } from "node:events";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type * as tfl from "@tensorflow/tfjs-layers";

export interface ModelFileServer {
  /** http://127.0.0.1:port */
  url: string;
  /**
   * Saves `model` with tf.js's own http save handler into dir/name; returns the local
   * model.json path. tf.js keeps a compiled model's loss (its trainingConfig) only with includeOptimizer.
   */
  save(model: tfl.LayersModel, name: string, options?: { includeOptimizer?: boolean }): Promise<string>;
  close(): Promise<void>;
}

export async function startModelFileServer(dir: string): Promise<ModelFileServer> {
  const server = createServer((request, response) => {
    const path = join(dir, decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname));
    const reply = (status: number, body?: Uint8Array | string) => {
      response.writeHead(status);
      response.end(body);
    };
    if (request.method === "POST") {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const form = new Request("http://x", {
          method: "POST",
          headers: { "content-type": request.headers["content-type"] ?? "" },
          body: Buffer.concat(chunks),
        }).formData();
        form
          .then(async (fields) => {
            await mkdir(path, { recursive: true });
            for (const [name, value] of fields) {
              if (typeof value !== "string") await writeFile(join(path, name), new Uint8Array(await value.arrayBuffer()));
            }
            reply(200, "{}");
          })
          .catch((error: unknown) => reply(500, String(error)));
      });
      return;
    }
    readFile(path).then(
      (bytes) => reply(200, bytes),
      () => reply(404),
    );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async save(model, name, options = {}) {
      await model.save(`${url}/${name}`, options);
      return join(dir, name, "model.json");
    },
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
