/**
 * Every request the server answered, in order, in audit-log terms (verb, apiGroup, resource,
 * subresource, namespace, name) plus the HTTP method, path, query, Content-Type and status code:
 * what a test asserts the operator called, e.g. that its patches name their type and that it
 * patches status only when something changed.
 */
import type { Verb } from "./request-route.js";

export interface RequestRecord {
  method: string;
  /** The path without the query. */
  path: string;
  query: string;
  /** The request's Content-Type header, as sent (undefined when none). */
  contentType: string | undefined;
  /** The HTTP status answered (for a watch: when its stream started). */
  status: number;
  /** Absent for discovery and for paths the server does not serve. */
  verb?: Verb;
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** The user the request's bearer token names (the operator's tests tell its calls from their own). */
  user?: string;
  /** True when the answer was an injected fault. */
  injected: boolean;
}

export type RequestFilter = Partial<
  Pick<RequestRecord, "verb" | "apiGroup" | "resource" | "subresource" | "namespace" | "name" | "method" | "status" | "user">
>;

export interface RequestLog {
  record(entry: RequestRecord): void;
  /** The requests so far (a copy), optionally only those matching `filter`. */
  entries(filter?: RequestFilter): RequestRecord[];
  /** The first request matching `filter`, already answered or yet to come (instead of polling). */
  waitFor(filter: RequestFilter, signal?: AbortSignal): Promise<RequestRecord>;
  clear(): void;
}

/** The resource as RBAC names it ("trainingjobs/status"), for operator-permissions' `allows`. */
export function rbacResource(entry: Pick<RequestRecord, "resource" | "subresource">): string {
  return entry.subresource === undefined ? (entry.resource ?? "") : `${entry.resource ?? ""}/${entry.subresource}`;
}

function matches(entry: RequestRecord, filter: RequestFilter): boolean {
  return Object.entries(filter).every(([key, value]) => entry[key as keyof RequestRecord] === value);
}

export function createRequestLog(): RequestLog {
  let records: RequestRecord[] = [];
  const waiters = new Set<(entry: RequestRecord) => void>();
  return {
    record(entry) {
      records.push(entry);
      for (const waiter of [...waiters]) waiter(entry);
    },
    entries: (filter = {}) => records.filter((entry) => matches(entry, filter)).map((entry) => ({ ...entry })),
    waitFor(filter, signal) {
      const found = records.find((entry) => matches(entry, filter));
      if (found !== undefined) return Promise.resolve({ ...found });
      return new Promise((resolve, reject) => {
        const done = () => {
          waiters.delete(waiter);
          signal?.removeEventListener("abort", aborted);
        };
        const waiter = (entry: RequestRecord) => {
          if (!matches(entry, filter)) return;
          done();
          resolve({ ...entry });
        };
        const aborted = () => {
          done();
          reject(signal?.reason instanceof Error ? signal.reason : new Error("waitFor aborted"));
        };
        if (signal?.aborted === true) return aborted();
        waiters.add(waiter);
        signal?.addEventListener("abort", aborted, { once: true });
      });
    },
    clear: () => {
      records = [];
    },
  };
}
