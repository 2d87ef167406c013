/**
 * The coordination.k8s.io/v1 Lease that leader election holds, read and written with client-node:
 * the one place its API answers are translated (404 on read: no Lease yet; 409 on create or
 * update: another candidate wrote first). Every call is cut off at its deadline, so a hung API
 * server cannot hold a leader past its renew deadline. Writes carry the resourceVersion that was
 * read: the API server refuses them (409) when anyone wrote in between.
 */
import type { ConfigurationOptions, CoordinationV1Api, RequestContext, ResponseContext, V1Lease } from "@kubernetes/client-node";
import { Observable, V1MicroTime } from "@kubernetes/client-node";
import { isStatusCode } from "./api-status.js";

/** The Lease's spec as leader election reads it (client-go's LeaderElectionRecord). */
export interface LeaseRecord {
  /** Empty when nobody holds it (released). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: Date;
  renewTime: Date;
  leaseTransitions: number;
}

export interface ObservedLease {
  record: LeaseRecord;
  resourceVersion: string;
}

export interface LeaseLock {
  /** namespace/name, for logs and errors. */
  readonly description: string;
  /** The Lease, or undefined when there is none. */
  get(deadline: AbortSignal): Promise<ObservedLease | undefined>;
  /** The Lease as created, or undefined when someone created it first. */
  create(record: LeaseRecord, deadline: AbortSignal): Promise<ObservedLease | undefined>;
  /** The Lease as written, or undefined when someone wrote it since `resourceVersion` was read. */
  update(record: LeaseRecord, resourceVersion: string, deadline: AbortSignal): Promise<ObservedLease | undefined>;
}

/** client-node request options that abort the request with `signal` (its middleware is how a call takes one). */
function abortedBy(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (context: RequestContext) => {
          context.setSignal(signal);
          return new Observable(Promise.resolve(context));
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

function toLease(namespace: string, name: string, record: LeaseRecord, resourceVersion?: string): V1Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace, ...(resourceVersion === undefined ? {} : { resourceVersion }) },
    spec: {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      // MicroTime: the API server parses exactly six fractional digits.
      acquireTime: new V1MicroTime(record.acquireTime.getTime()),
      renewTime: new V1MicroTime(record.renewTime.getTime()),
      leaseTransitions: record.leaseTransitions,
    },
  };
}

/** client-node hands MicroTime fields back as the server's strings; a Lease someone else wrote may lack any field. */
function timeOf(value: unknown): Date {
  const date = value instanceof Date ? value : new Date(typeof value === "string" ? value : 0);
  return Number.isNaN(date.getTime()) ? new Date(0) : date;
}

function fromLease(lease: V1Lease): ObservedLease {
  const spec = lease.spec ?? {};
  return {
    record: {
      holderIdentity: spec.holderIdentity ?? "",
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      acquireTime: timeOf(spec.acquireTime),
      renewTime: timeOf(spec.renewTime),
      leaseTransitions: spec.leaseTransitions ?? 0,
    },
    resourceVersion: lease.metadata?.resourceVersion ?? "",
  };
}

export function createLeaseLock(api: CoordinationV1Api, namespace: string, name: string): LeaseLock {
  return {
    description: `${namespace}/${name}`,
    async get(deadline) {
      try {
        return fromLease(await api.readNamespacedLease({ name, namespace }, abortedBy(deadline)));
      } catch (error) {
        if (isStatusCode(error, 404)) return undefined;
        throw error;
      }
    },
    async create(record, deadline) {
      try {
        return fromLease(await api.createNamespacedLease({ namespace, body: toLease(namespace, name, record) }, abortedBy(deadline)));
      } catch (error) {
        if (isStatusCode(error, 409)) return undefined;
        throw error;
      }
    },
    async update(record, resourceVersion, deadline) {
      try {
        const body = toLease(namespace, name, record, resourceVersion);
        return fromLease(await api.replaceNamespacedLease({ name, namespace, body }, abortedBy(deadline)));
      } catch (error) {
        if (isStatusCode(error, 409)) return undefined;
        throw error;
      }
    },
  };
}
