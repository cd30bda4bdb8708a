/**
 * The session trail on DynamoDB (lib/tables.ts AuditTable): events at seq 1, 2, 3… per session, and
 * a session head at seq 0 (summary for listings, and the recorded end of the chain).
 *
 * One append is one TransactWriteItems: the events (each `attribute_not_exists(seq)`) and the head
 * that now ends at the last of them (conditional on the head still ending where this writer
 * believes it does), optionally with one more item written in the same transaction — the request
 * record, so a request and its trail events are stored together or not at all.
 *
 * Where the chain ends is kept per session in this process (the head as last written here), so an
 * append needs no read first: one round trip. A writer that is wrong about the end (another process
 * appended, or the session is new to this process) has its transaction cancelled with the head as
 * stored (ReturnValuesOnConditionCheckFailure), learns the end from it and tries again. Seq numbers
 * stay gapless and unique, and the head is exactly the end of the chain after every append.
 */
import { TransactWriteItemsCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  QueryCommand,
  type DynamoDBDocumentClient,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall, type marshallOptions } from '@aws-sdk/util-dynamodb';
import { marshallItem } from './marshall.js';
import { AuditTable } from '../../lib/tables.js';
import { secondLayer } from '../core/masking/second-layer.js';
import { ServiceUnavailableError } from '../core/errors.js';
import {
  matchesFilter,
  type SessionFilter,
  type SessionSummary,
  type TrailReader,
} from '../core/sessions.js';
import { GENESIS_HASH, sealEvent } from '../core/trail-chain.js';
import type { StoredTrailEvent, TrailEvent, TrailWriter } from '../core/trail.js';
import { defaultDocumentClient, lowLevelClient, tableName } from './dynamodb.js';

const HEAD_SEQ = 0;
const HEAD_KIND = 'session';
/** Attempts before giving up (each conflict means another writer made progress). */
const MAX_ATTEMPTS = 200;
/** How long a writer keeps competing for a contended session before answering 503. */
const MAX_CONTENTION_MS = 10_000;
/** Sessions whose chain end this process remembers. */
const MAX_CACHED_SESSIONS = 10_000;

type TransactPut = NonNullable<NonNullable<TransactWriteCommandInput['TransactItems']>[number]['Put']>;

/**
 * One Put of a transaction in the wire form (AttributeValues), marshalled as the document client
 * would have (its own options), so the low-level client can send it.
 */
export function marshallPut(item: { Put?: TransactPut }, options: marshallOptions): TransactWriteItem {
  const { Item, ExpressionAttributeValues, ...rest } = item.Put!;
  return {
    Put: {
      ...rest,
      Item: marshallItem(Item, options),
      ...(ExpressionAttributeValues
        ? { ExpressionAttributeValues: marshallItem(ExpressionAttributeValues, options) }
        : {}),
    },
  };
}

/**
 * The document client's marshalling options as given, with `convertTopLevelContainer` off (the
 * document client turns it on in that same options object while it sends, for its per-attribute
 * calls), so a whole Item marshals to its attribute map.
 */
export function wireMarshalling(doc: DynamoDBDocumentClient): marshallOptions {
  const config = doc.config as { translateConfig?: { marshallOptions?: marshallOptions } };
  return { ...config.translateConfig?.marshallOptions, convertTopLevelContainer: false };
}

/** Attributes that are storage, not event content (not hashed, not returned). */
const STORAGE_ONLY = new Set(['expiresAtEpoch']);

export interface TrailStoreOptions {
  readonly client?: DynamoDBDocumentClient;
  readonly tableName?: string;
  /** Days an item lives (DynamoDB TTL); longer than the export interval. */
  readonly ttlDays: number;
  readonly log?: (entry: Record<string, unknown>) => void;
}

/** One more item to write in the same transaction as an append (a Put with its condition). */
export interface CompanionPut {
  readonly TableName: string;
  readonly Item: Record<string, unknown>;
  readonly ConditionExpression?: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
  /** The error to throw when the companion's condition fails (the append is not retried then). */
  readonly onConditionFailed: (cause: unknown) => Error;
}

/** What this process believes about a session: its head as stored and where the chain ends. */
interface KnownSession {
  /** The head item as stored; undefined when the session has no head yet. */
  readonly head?: SessionSummary & { sessionDay?: string };
  /** The last event (may be past the head only for heads written by an older, lagging writer). */
  readonly lastSeq: number;
  readonly lastHash: string;
}

function toItem(event: StoredTrailEvent, expiresAtEpoch: number): Record<string, unknown> {
  // detail is free-form; stored as canonical-ready JSON text so it reads back exactly as hashed.
  const { detail, ...rest } = event;
  return { ...rest, ...(detail !== undefined ? { detail: JSON.stringify(detail) } : {}), expiresAtEpoch };
}

function fromItem(item: Record<string, unknown>): StoredTrailEvent {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) {
    if (STORAGE_ONLY.has(k)) continue;
    if (k === 'detail' && typeof v === 'string') {
      try {
        out.detail = JSON.parse(v) as unknown;
      } catch {
        // A detail that is not JSON any more was altered; keep the text so the hash check names it.
        out.detail = v;
      }
      continue;
    }
    out[k] = v instanceof Set ? [...v] : v;
  }
  return out as unknown as StoredTrailEvent;
}

const list = (v: unknown): string[] =>
  v instanceof Set ? [...(v as Set<string>)].sort() : Array.isArray(v) ? (v as string[]) : [];

function headFrom(item: Record<string, unknown>): SessionSummary & { sessionDay?: string } {
  return {
    sessionId: String(item.sessionId),
    ...(typeof item.sessionDay === 'string' ? { sessionDay: item.sessionDay } : {}),
    startedAt: String(item.startedAt ?? ''),
    lastAt: String(item.lastAt ?? ''),
    lastSeq: Number(item.lastSeq ?? 0),
    lastHash: String(item.lastHash ?? ''),
    principals: list(item.principals),
    principalNames: list(item.principalNames),
    targets: list(item.targets),
    outcomes: list(item.outcomes),
    statuses: list(item.statuses),
  };
}

interface CancellationReason {
  readonly Code?: string;
  readonly Item?: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue>;
}

/** The per-item reasons of a cancelled transaction; undefined for any other error. */
function cancellationReasons(error: unknown): readonly CancellationReason[] | undefined {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
  return Array.isArray(reasons) ? reasons : [];
}

function days(from: Date, to: Date): string[] {
  const out: string[] = [];
  const d = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  while (d <= to) {
    out.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return out;
}

export class DynamoTrailStore implements TrailWriter, TrailReader {
  private readonly doc: DynamoDBDocumentClient;
  /** The document client's own marshalling, for the transactions sent in the wire form. */
  private readonly marshalling: marshallOptions;
  private readonly table: string;
  private readonly ttlSeconds: number;
  private readonly log?: (entry: Record<string, unknown>) => void;

  constructor(options: TrailStoreOptions) {
    this.doc = options.client ?? defaultDocumentClient();
    this.marshalling = wireMarshalling(this.doc);
    this.table = options.tableName ?? tableName(AuditTable);
    this.ttlSeconds = options.ttlDays * 86_400;
    this.log = options.log;
  }

  /**
   * Appends to one session are chained, so they serialise. Within this process they queue here
   * (no contention at all); across processes the conditional transaction below decides, with retries.
   */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly known = new Map<string, KnownSession>();

  async append(sessionId: string, events: readonly TrailEvent[]): Promise<void> {
    await this.appendWith(sessionId, events);
  }

  /**
   * Appends `events` and, in the same transaction, writes `companion` (the request record): both or
   * neither. A failed companion condition throws `companion.onConditionFailed(...)`.
   */
  async appendWith(
    sessionId: string,
    events: readonly TrailEvent[],
    companion?: CompanionPut,
  ): Promise<void> {
    if (events.length === 0 && !companion) return;
    // The detectors over every event before it is chained and kept, whatever built it.
    events = events.map((e) => secondLayer(e));
    const previous = this.queues.get(sessionId) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.appendChained(sessionId, events, companion));
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(sessionId, settled);
    try {
      await mine;
    } finally {
      if (this.queues.get(sessionId) === settled) this.queues.delete(sessionId);
    }
  }

  private async appendChained(
    sessionId: string,
    events: readonly TrailEvent[],
    companion?: CompanionPut,
  ): Promise<void> {
    // A session new to this process is assumed new everywhere: if it is not, the cancelled
    // transaction hands back the head, and the second attempt is right.
    let known: KnownSession = this.known.get(sessionId) ?? { lastSeq: 0, lastHash: GENESIS_HASH };
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const sealed: StoredTrailEvent[] = [];
      let last = { seq: known.lastSeq, hash: known.lastHash };
      for (const event of events) {
        const e = sealEvent(sessionId, last.seq + 1, last.hash, event);
        sealed.push(e);
        last = e;
      }
      const head = sealed.length > 0 ? this.nextHead(sessionId, known.head, sealed) : undefined;
      const items: { Put: TransactPut }[] = [];
      if (companion) {
        const { onConditionFailed: _ignored, ...put } = companion;
        items.push({ Put: put });
      }
      for (const e of sealed) {
        items.push({
          Put: {
            TableName: this.table,
            Item: toItem(e, this.expiry(e.at)),
            ConditionExpression: 'attribute_not_exists(#seq)',
            ExpressionAttributeNames: { '#seq': 'seq' },
          },
        });
      }
      if (head) {
        items.push({
          Put: {
            TableName: this.table,
            Item: head.item,
            ...(known.head
              ? {
                  ConditionExpression: '#lastSeq = :lastSeq',
                  ExpressionAttributeNames: { '#lastSeq': 'lastSeq' },
                  ExpressionAttributeValues: { ':lastSeq': known.head.lastSeq },
                }
              : {
                  ConditionExpression: 'attribute_not_exists(#seq)',
                  ExpressionAttributeNames: { '#seq': 'seq' },
                }),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        });
      }
      try {
        await lowLevelClient(this.doc).send(
          new TransactWriteItemsCommand({
            TransactItems: items.map((item) => marshallPut(item, this.marshalling)),
          }),
        );
        if (head) this.remember(sessionId, { head: head.summary, lastSeq: last.seq, lastHash: last.hash });
        return;
      } catch (error) {
        const reasons = cancellationReasons(error);
        if (!reasons) throw error;
        const offset = companion ? 1 : 0;
        if (companion && reasons[0]?.Code === 'ConditionalCheckFailed')
          throw companion.onConditionFailed(error);
        if (attempt >= MAX_ATTEMPTS || Date.now() - started > MAX_CONTENTION_MS) {
          throw new ServiceUnavailableError(`trail of session ${sessionId} is too contended`, error);
        }
        const headReason = head ? reasons[offset + sealed.length] : undefined;
        const eventsFailed = reasons
          .slice(offset, offset + sealed.length)
          .some((r) => r.Code === 'ConditionalCheckFailed');
        if (headReason?.Code === 'ConditionalCheckFailed') {
          // Someone else moved the head: continue after the end it records.
          const stored = headReason.Item ? headFrom(unmarshall(headReason.Item)) : undefined;
          known = stored
            ? { head: stored, lastSeq: stored.lastSeq, lastHash: stored.lastHash }
            : { lastSeq: 0, lastHash: GENESIS_HASH };
        } else if (eventsFailed) {
          // The head is behind the events (written by an older writer): find the real end.
          known = await this.readKnown(sessionId);
        } else {
          // TransactionConflict (another transaction on these items right now): back off, jittered.
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 * 1.5 ** attempt)));
        }
        if (attempt > 0) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 * 1.5 ** attempt)));
        }
      }
    }
  }

  private remember(sessionId: string, known: KnownSession): void {
    this.known.delete(sessionId);
    this.known.set(sessionId, known);
    if (this.known.size > MAX_CACHED_SESSIONS) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
  }

  /** The head and the last event as stored (consistent reads): the slow path after a conflict. */
  private async readKnown(sessionId: string): Promise<KnownSession> {
    const [head, lastEvent] = await Promise.all([this.head(sessionId), this.lastEvent(sessionId)]);
    return {
      ...(head ? { head } : {}),
      lastSeq: lastEvent?.seq ?? 0,
      lastHash: lastEvent?.hash ?? GENESIS_HASH,
    };
  }

  /** The head after `stored`: it ends at their last event and adds what they tell to the summary. */
  private nextHead(
    sessionId: string,
    current: (SessionSummary & { sessionDay?: string }) | undefined,
    stored: readonly StoredTrailEvent[],
  ): { item: Record<string, unknown>; summary: SessionSummary & { sessionDay?: string } } {
    const first = stored[0];
    const last = stored[stored.length - 1];
    const union = (have: readonly string[] | undefined, add: (string | undefined)[]) =>
      [...new Set([...(have ?? []), ...add.filter((v): v is string => Boolean(v))])].sort();
    const summary: SessionSummary & { sessionDay: string } = {
      sessionId,
      startedAt: current?.startedAt || first.at,
      sessionDay: current?.sessionDay || (current?.startedAt || first.at).slice(0, 10),
      lastAt: last.at,
      lastSeq: last.seq,
      lastHash: last.hash,
      principals: union(
        current?.principals,
        stored.map((e) => e.principal),
      ),
      principalNames: union(
        current?.principalNames,
        stored.map((e) => e.principalName),
      ),
      targets: union(
        current?.targets,
        stored.map((e) => e.target),
      ),
      outcomes: union(
        current?.outcomes,
        stored.map((e) => e.outcome),
      ),
      statuses: union(
        current?.statuses,
        stored.map((e) => e.status),
      ),
    };
    const item: Record<string, unknown> = {
      sessionId,
      seq: HEAD_SEQ,
      kind: HEAD_KIND,
      sessionDay: summary.sessionDay,
      startedAt: summary.startedAt,
      lastAt: summary.lastAt,
      lastSeq: summary.lastSeq,
      lastHash: summary.lastHash,
      expiresAtEpoch: this.expiry(last.at),
    };
    for (const name of ['principals', 'principalNames', 'targets', 'outcomes', 'statuses'] as const) {
      if (summary[name].length > 0) item[name] = new Set(summary[name]);
    }
    return { item, summary };
  }

  private expiry(at: string): number {
    const t = Date.parse(at);
    return Math.floor((Number.isNaN(t) ? Date.now() : t) / 1000) + this.ttlSeconds;
  }

  private async lastEvent(sessionId: string): Promise<StoredTrailEvent | undefined> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: '#s = :s AND #seq > :head',
        ExpressionAttributeNames: { '#s': 'sessionId', '#seq': 'seq' },
        ExpressionAttributeValues: { ':s': sessionId, ':head': HEAD_SEQ },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? fromItem(item) : undefined;
  }

  async head(sessionId: string): Promise<SessionSummary | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { sessionId, seq: HEAD_SEQ }, ConsistentRead: true }),
    );
    return out.Item ? headFrom(out.Item) : undefined;
  }

  async events(sessionId: string): Promise<StoredTrailEvent[]> {
    const events: StoredTrailEvent[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#s = :s AND #seq > :head',
          ExpressionAttributeNames: { '#s': 'sessionId', '#seq': 'seq' },
          ExpressionAttributeValues: { ':s': sessionId, ':head': HEAD_SEQ },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) events.push(fromItem(item));
      start = out.LastEvaluatedKey;
    } while (start);
    return events;
  }

  /** Events about one request, across sessions, by seq. */
  async eventsByRequest(requestId: string): Promise<StoredTrailEvent[]> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byRequest',
        KeyConditionExpression: '#r = :r',
        ExpressionAttributeNames: { '#r': 'requestId' },
        ExpressionAttributeValues: { ':r': requestId },
      }),
    );
    return (out.Items ?? []).map(fromItem);
  }

  async sessions(filter: SessionFilter): Promise<SessionSummary[]> {
    const found: SessionSummary[] = [];
    // Newest day first, so the limit keeps the most recent sessions.
    for (const day of days(filter.from, filter.to).reverse()) {
      let start: Record<string, unknown> | undefined;
      do {
        const out = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            IndexName: 'bySessionDay',
            KeyConditionExpression: '#d = :d AND #st BETWEEN :from AND :to',
            ExpressionAttributeNames: { '#d': 'sessionDay', '#st': 'startedAt' },
            ExpressionAttributeValues: {
              ':d': day,
              ':from': filter.from.toISOString(),
              ':to': filter.to.toISOString(),
            },
            ScanIndexForward: false,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        for (const item of out.Items ?? []) {
          const s = headFrom(item);
          if (matchesFilter(s, filter)) found.push(s);
          if (found.length >= filter.limit) return found;
        }
        start = out.LastEvaluatedKey;
      } while (start);
    }
    return found;
  }
}
