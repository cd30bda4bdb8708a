/**
 * Tamper evidence for the session trail: each stored event's hash is sha256 over the canonical JSON
 * of the event (its session, seq and the previous event's hash included), so changing, removing or
 * reordering any stored event breaks the chain at a place `verifyChain` can name.
 *
 * What it proves and what it does not: someone who can rewrite the table can also recompute every
 * hash after the event they change. The session head (last seq and hash) and the exports in the
 * versioned audit lake are the anchors that catch that; see docs/audit.md.
 */
import * as crypto from 'node:crypto';
import type { StoredTrailEvent, TrailEvent } from './trail.js';

/** `prevHash` of the first event of every session. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, `undefined` members dropped.
 * For the values the trail stores (strings, finite numbers, booleans, null, arrays, plain objects)
 * this is the JSON Canonicalization Scheme of RFC 8785; written here because it is twenty lines and
 * the hash format is Warden's own contract. (Written as loops appending to one string: it runs over
 * every trail event on the request path.)
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no representation for ' + value);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          // A hole writes nothing between its commas, as Array.prototype.join does.
          if (!(i in value)) continue;
          const v: unknown = value[i];
          out += v === undefined ? 'null' : canonicalJson(v);
        }
        return out + ']';
      }
      const record = value as Record<string, unknown>;
      // The default sort compares UTF-16 code units.
      const keys = Object.keys(record).sort();
      let out = '{';
      for (const key of keys) {
        const v = record[key];
        if (v === undefined) continue;
        if (out.length > 1) out += ',';
        out += JSON.stringify(key) + ':' + canonicalJson(v);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`canonical JSON has no representation for a ${typeof value}`);
  }
}

/** crypto.hash (Node 20.12+, one call) where there is one, else a Hash object. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string) => string }).hash;
const sha256Hex = (text: string): string =>
  oneShotHash ? oneShotHash('sha256', text) : crypto.createHash('sha256').update(text, 'utf8').digest('hex');

/** The hash of a stored event: everything it holds except the hash itself. */
export function eventHash(event: Omit<StoredTrailEvent, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...content } = event;
  return sha256Hex(canonicalJson(content));
}

/** Places an event at `seq` after an event whose hash is `prevHash`. */
export function sealEvent(
  sessionId: string,
  seq: number,
  prevHash: string,
  event: TrailEvent,
): StoredTrailEvent {
  const unsealed = { ...event, sessionId, seq, prevHash };
  return { ...unsealed, hash: eventHash(unsealed) };
}

export type ChainProblemKind =
  /** The event's content no longer matches its hash. */
  | 'altered'
  /** A seq that should be there is not. */
  | 'missing'
  /** The event's prevHash is not the hash of the event before it (one of the two was rewritten). */
  | 'link_broken'
  /** The session head records a different end of the chain. */
  | 'head_mismatch';

export interface ChainProblem {
  readonly kind: ChainProblemKind;
  /** The first seq concerned. */
  readonly seq: number;
  /** For `missing`: the last seq of the missing run. */
  readonly toSeq?: number;
  readonly message: string;
}

export interface ChainVerification {
  readonly ok: boolean;
  /** Events present. */
  readonly events: number;
  /** Highest seq present (0 for none). */
  readonly lastSeq: number;
  /** Problems in seq order; the first is where the chain first breaks. */
  readonly problems: readonly ChainProblem[];
  readonly firstProblem?: ChainProblem;
}

/** The end of the chain as the session head recorded it, when there is one. */
export interface ChainHead {
  readonly lastSeq: number;
  readonly lastHash: string;
}

function missing(from: number, to: number): ChainProblem {
  return {
    kind: 'missing',
    seq: from,
    ...(to > from ? { toSeq: to } : {}),
    message: to > from ? `events ${from}–${to} are missing` : `event ${from} is missing`,
  };
}

/**
 * Recomputes the chain of one session's events (any order) and names every place it breaks.
 * A gap is reported once as `missing`; the event after a gap is still checked for alteration.
 */
export function verifyChain(events: readonly StoredTrailEvent[], head?: ChainHead): ChainVerification {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  const problems: ChainProblem[] = [];
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let last: StoredTrailEvent | undefined;
  for (const event of sorted) {
    if (event.seq < expectedSeq) {
      problems.push({ kind: 'altered', seq: event.seq, message: `event ${event.seq} appears twice` });
      continue;
    }
    const afterGap = event.seq > expectedSeq;
    if (afterGap) problems.push(missing(expectedSeq, event.seq - 1));
    if (eventHash(event) !== event.hash) {
      problems.push({
        kind: 'altered',
        seq: event.seq,
        message: `event ${event.seq} (${String(event.type)}) was altered: its content does not match its hash`,
      });
    } else if (!afterGap && event.prevHash !== prevHash) {
      problems.push({
        kind: 'link_broken',
        seq: event.seq,
        message: `event ${event.seq} does not follow event ${event.seq - 1}: its prevHash is not that event's hash (one of them was rewritten)`,
      });
    }
    prevHash = event.hash;
    expectedSeq = event.seq + 1;
    last = event;
  }
  const lastSeq = last?.seq ?? 0;
  if (head) {
    if (head.lastSeq > lastSeq) {
      problems.push(missing(lastSeq + 1, head.lastSeq));
    } else if (head.lastSeq === lastSeq && lastSeq > 0 && head.lastHash !== last?.hash) {
      problems.push({
        kind: 'head_mismatch',
        seq: lastSeq,
        message: `event ${lastSeq} is not the event the session head recorded as the last one`,
      });
    }
  }
  return {
    ok: problems.length === 0,
    events: sorted.length,
    lastSeq,
    problems,
    ...(problems[0] ? { firstProblem: problems[0] } : {}),
  };
}
