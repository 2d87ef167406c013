/** What the API server answered: whether a client-node call failed with one of these HTTP status codes. */
import { ApiException } from "@kubernetes/client-node";

export function isStatusCode(error: unknown, ...codes: number[]): boolean {
  return error instanceof ApiException && codes.includes(error.code);
}
