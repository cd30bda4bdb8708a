/**
 * Waiting for a human inside the call: `wait_seconds` on the MCP tools, `?wait=N` on the REST API.
 * The request store is the one place a decision shows up (the approval workflow writes it there,
 * whichever instance runs it), so a waiting call polls the record with a short backoff until it is
 * decided or the wait is over. Nothing is held but this one call: the request is recorded and its
 * approval started before any waiting begins, so a call that gives up changes nothing.
 */
import { BadRequestError } from './errors.js';
import type { RequestStore } from './ports.js';
import type { RequestRecord, RequestStatus } from './types.js';

/**
 * The longest wait a call may ask for. API Gateway HTTP APIs give up after 30 s and the API function
 * after 29 s; 25 s of waiting leaves room for the submission before it and the answer after it.
 */
export const MAX_WAIT_SECONDS = 25;

/** Still undecided, or decided and not finished: worth waiting for. */
const UNSETTLED: ReadonlySet<RequestStatus> = new Set(['pending_approval', 'approved', 'running']);

export function isSettled(status: RequestStatus): boolean {
  return !UNSETTLED.has(status);
}

/** `?wait=N` from a query string: a whole number of seconds, 0 to MAX_WAIT_SECONDS. */
export function parseWaitParam(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  if (!/^\d{1,3}$/.test(value) || Number(value) > MAX_WAIT_SECONDS) {
    throw new BadRequestError(
      `wait must be a whole number of seconds from 0 to ${MAX_WAIT_SECONDS} (got "${value.slice(0, 16)}")`,
    );
  }
  return Number(value);
}

export interface WaitOptions {
  /** Called after every read while the request is still unsettled (progress notifications). */
  readonly onPoll?: (record: RequestRecord, elapsedMs: number) => void | Promise<void>;
  /** For tests of the backoff itself; real time otherwise. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  /** Stops the wait early (the client went away). */
  readonly signal?: AbortSignal;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 1000;

/**
 * Reads the record until it is settled or `deadlineMs` (epoch ms) has passed; returns the last
 * record read (undefined only if it vanished). Backoff: 250 ms, growing by half to 1 s.
 */
export async function waitForSettled(
  store: Pick<RequestStore, 'get'>,
  id: string,
  deadlineMs: number,
  options: WaitOptions = {},
): Promise<RequestRecord | undefined> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = now();
  let delay = FIRST_DELAY_MS;
  for (;;) {
    const record = await store.get(id);
    if (!record || isSettled(record.status)) return record;
    const left = deadlineMs - now();
    if (left <= 0 || options.signal?.aborted) return record;
    await options.onPoll?.(record, now() - started);
    await sleep(Math.min(delay, left));
    delay = Math.min(MAX_DELAY_MS, Math.round(delay * 1.5));
  }
}
