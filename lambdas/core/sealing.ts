/**
 * The exact form of a request waiting for approval, sealed apart from what is shown.
 *
 * The record and the trail keep the shown form (lambdas/core/shown.ts). What must run byte for byte
 * after approval — the statement and parameters, AWS input or MCP arguments as sent, and the
 * justification Cedar decided on — is sealed with AES-256-GCM under a fresh data key, bound to the
 * request id (additional authenticated data / KMS encryption context), and opened only by the
 * executor, the requester and the approvers who must read it. Any change to the sealed bytes, or
 * moving them to another request, makes opening fail, and the request then does not run.
 */
import type { Operation } from './types.js';

/** What is sealed: exactly what runs and what it was decided on. */
export interface SealedPayload {
  readonly operation: Operation;
  readonly justification?: string;
}

/** The stored envelope (base64 fields); `key` is the data key encrypted by the sealing key. */
export interface SealedOperation {
  readonly v: 1;
  readonly alg: 'AES-256-GCM';
  /** Which sealing key wrapped the data key: a KMS key ARN, or `local`. */
  readonly keyId: string;
  readonly key: string;
  readonly iv: string;
  readonly tag: string;
  readonly data: string;
}

export interface OperationSealer {
  seal(requestId: string, payload: SealedPayload): Promise<SealedOperation>;
  /** Throws SealError when the envelope was altered, belongs to another request, or cannot be opened. */
  open(requestId: string, sealed: SealedOperation): Promise<SealedPayload>;
}

export class SealError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SealError';
  }
}

/** Statuses in which the exact form is still needed; past them the store drops it. */
export const SEALED_STATUSES: ReadonlySet<string> = new Set(['pending_approval', 'approved', 'running']);

/** The bytes bound into every seal: the request it belongs to. */
export function sealContext(requestId: string): string {
  return `warden:request:${requestId}`;
}
