import * as tf from "@tensorflow/tfjs-core";
import { create } from "@bufbuild/protobuf";
import { ModelSpecSchema, parameterLayout, datasetShape, initialParameters } from "@trainfleet/proto";
import { selectBackend, createModel } from "./dist/compute/index.js";
const log = { debug: (f,m)=>console.log("debug",m,f), info:(f,m)=>console.log("info",m,f), warn:(f,m)=>console.log("warn",m,f), error:()=>{}, child(){return log;} };
for (const be of process.argv.slice(2)) {
  await selectBackend(be, log);
  for (const spec of [{ case: "mlp", value: { hiddenUnits: [16] } }, { case: "cnn", value: { convFilters: [4, 8], kernelSize: 3, denseUnits: 0 } }]) {
    const layout = parameterLayout(create(ModelSpecSchema, { kind: spec }), datasetShape("fashion-mnist"));
    const p = initialParameters(layout, 7, 0, layout.parameterCount);
    for (const t of layout.tensors) if (t.fanIn === 0) for (let i = 0; i < t.size; i++) p[t.offset + i] = 0.01 * (i % 7 - 3);
    const m = createModel(layout);
    const n = 4; const x = new Float32Array(n * 784); for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) >>> 0) % 256 / 255;
    const batch = { count: n, x, labels: Int32Array.from([1, 3, 5, 7]) };
    const g = new Float32Array(layout.parameterCount);
    const loss = m.lossAndGradient(p, batch, g);
    let s = 0; for (const v of g) s += Math.abs(v);
    console.log(be, spec.case, loss, s, tf.memory().numTensors, m.evaluate(p, batch));
  }
}
