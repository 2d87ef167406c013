/**
 * Stock tf.js training to a test accuracy: the single-process contender of time-to-accuracy.ts.
 * What a tf.js user writes without trainfleet: a tf.sequential model of the same layers
 * (Dense layers start Glorot-uniform with zero biases), compiled with the same Adam, and
 * `model.fit` over the whole training set with the global batch, on the wasm backend with one
 * thread. Then the 10,000 test samples, and one JSON line on stdout: {"testAccuracy": ...}.
 *
 *     node stock-tfjs-training.js DATA_DIR EPOCHS BATCH HIDDEN LR BETA1 BETA2 EPSILON SEED
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { getThreadsCount, setThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import * as layers from "@tensorflow/tfjs-layers";

const [dataDir, epochs, batch, hidden, lr, beta1, beta2, epsilon, seed] = process.argv.slice(2);
if (seed === undefined)
  throw new Error(
    "usage: stock-tfjs-training.js DATA_DIR EPOCHS BATCH HIDDEN LR BETA1 BETA2 EPSILON SEED (HIDDEN: widths, comma-separated)",
  );

const pixels = 28 * 28;

/** An IDX file's payload (gzip), past its header of `headerBytes`. */
function idx(prefix: string, kind: "images-idx3" | "labels-idx1", headerBytes: number): Uint8Array {
  return gunzipSync(readFileSync(join(dataDir!, `${prefix}-${kind}-ubyte.gz`))).subarray(headerBytes);
}

function split(prefix: string): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const images = idx(prefix, "images-idx3", 16);
  const labels = idx(prefix, "labels-idx1", 8);
  return {
    x: tf.tensor2d(
      Float32Array.from(images, (byte) => byte / 255),
      [labels.length, pixels],
    ),
    // Class indices, one per row, as sparseCategoricalCrossentropy takes them.
    y: tf.tensor2d(Float32Array.from(labels), [labels.length, 1]),
  };
}

// The wasm backend as a user sets it up in Node: its binaries from the package, one thread.
setWasmPaths(`${dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm"))}/`);
tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
setThreadsCount(1);
if (!(await tf.setBackend("wasm"))) throw new Error("the wasm backend failed to initialise");
await tf.ready();
if (getThreadsCount() !== 1) throw new Error(`wasm started ${getThreadsCount()} threads, expected 1`);
tf.enableProdMode();

const train = split("train");
const test = split("t10k");
const model = layers.sequential();
const widths = hidden!.split(",").filter(Boolean).map(Number);
widths.forEach((units, i) => {
  model.add(
    layers.layers.dense({
      units,
      activation: "relu",
      kernelInitializer: layers.initializers.glorotUniform({ seed: Number(seed) + i }),
      ...(i === 0 ? { inputShape: [pixels] } : {}),
    }),
  );
});
model.add(
  layers.layers.dense({
    units: 10,
    activation: "softmax",
    kernelInitializer: layers.initializers.glorotUniform({ seed: Number(seed) + widths.length }),
  }),
);
model.compile({
  optimizer: tf.train.adam(Number(lr), Number(beta1), Number(beta2), Number(epsilon)),
  loss: "sparseCategoricalCrossentropy",
});
await model.fit(train.x, train.y, { batchSize: Number(batch), epochs: Number(epochs), shuffle: true, verbose: 0 });

const correct = tf.tidy(() => {
  const predicted = tf.argMax(model.predict(test.x, { batchSize: 1000 }) as tf.Tensor2D, 1);
  return tf.sum(tf.equal(predicted, tf.cast(tf.reshape(test.y, [-1]), "int32"))).dataSync()[0]!;
});
console.log(JSON.stringify({ testAccuracy: correct / test.y.shape[0] }));
