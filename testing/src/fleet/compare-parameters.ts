/** Comparing trained parameter vectors, for readable failures: where they differ in bits, and where beyond a tolerance. */

/** Indices where |a-b| > atol + rtol*|b| (numpy.allclose). */
export function notClose(actual: Float32Array, expected: Float32Array, rtol: number, atol: number): number[] {
  const bad: number[] = [];
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= atol + rtol * Math.abs(expected[i]!))) bad.push(i);
  }
  return bad;
}

/** The first index whose bits differ; -1 when the two are bitwise equal. */
export function firstDifference(actual: Float32Array, expected: Float32Array): number {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  return a.findIndex((bits, i) => bits !== b[i]);
}
