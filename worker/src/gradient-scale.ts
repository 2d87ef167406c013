/**
 * The parameter server averages the ranks' gradients, which equals the global-batch mean
 * only when every rank had the same number of samples. When the slices differ (the short
 * last batch of an epoch), each rank scales its slice-mean gradient by
 * count * worldSize / globalBatchSize so that the average is again the mean over all
 * samples. With equal slices the factor is exactly 1 and nothing is touched.
 */
export function scaleGradient(gradient: Float32Array, count: number, worldSize: number, globalBatchSize: number): void {
  if (count * worldSize === globalBatchSize) return;
  const factor = (count * worldSize) / globalBatchSize;
  for (let i = 0; i < gradient.length; i++) gradient[i] = gradient[i]! * factor;
}
