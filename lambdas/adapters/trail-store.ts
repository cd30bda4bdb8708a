/**
 * The session trail on DynamoDB (lib/tables.ts AuditTable): events at seq 1, 2, 3… per session, and
 * a session head at seq 0 (summary for listings, and the recorded end of the chain).
 *
 * Seq numbers have no gaps and no duplicates under concurrency: each event is a conditional put
 * (`attribute_not_exists(seq)`) at last seq + 1 with the last event's hash as prevHash; a writer that
 * loses the race re-reads the last event and tries the next seq. The head is updated after the
 * events, never backwards (a head that lags is harmless; verify only trusts it to say where the
 * chain ended at least).
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { AuditTable } from '../../lib/tables.js';
import { ServiceUnavailableError } from '../core/errors.js';
import {
  matchesFilter,
  type SessionFilter,
  type SessionSummary,
  type TrailReader,
} from '../core/sessions.js';
import { GENESIS_HASH, sealEvent } from '../core/trail-chain.js';
import type { StoredTrailEvent, TrailEvent, TrailWriter } from '../core/trail.js';
import { defaultDocumentClient, isConditionalCheckFailed, tableName } from './dynamodb.js';

const HEAD_SEQ = 0;
const HEAD_KIND = 'session';
/** Attempts at one seq before giving up (each conflict means another writer made progress). */
const MAX_ATTEMPTS = 200;
/** How long a writer keeps competing for a contended session before answering 503. */
const MAX_CONTENTION_MS = 10_000;

/** Attributes that are storage, not event content (not hashed, not returned). */
const STORAGE_ONLY = new Set(['expiresAtEpoch']);

export interface TrailStoreOptions {
  readonly client?: DynamoDBDocumentClient;
  readonly tableName?: string;
  /** Days an item lives (DynamoDB TTL); longer than the export interval. */
  readonly ttlDays: number;
  readonly log?: (entry: Record<string, unknown>) => void;
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

function headFrom(item: Record<string, unknown>): SessionSummary {
  return {
    sessionId: String(item.sessionId),
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
  private readonly table: string;
  private readonly ttlSeconds: number;
  private readonly log?: (entry: Record<string, unknown>) => void;

  constructor(options: TrailStoreOptions) {
    this.doc = options.client ?? defaultDocumentClient();
    this.table = options.tableName ?? tableName(AuditTable);
    this.ttlSeconds = options.ttlDays * 86_400;
    this.log = options.log;
  }

  /**
   * Appends to one session are chained, so they serialise. Within this process they queue here
   * (no contention at all); across processes the conditional put below decides, with retries.
   */
  private readonly queues = new Map<string, Promise<void>>();

  async append(sessionId: string, events: readonly TrailEvent[]): Promise<void> {
    const previous = this.queues.get(sessionId) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.appendChained(sessionId, events));
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

  private async appendChained(sessionId: string, events: readonly TrailEvent[]): Promise<void> {
    const stored: StoredTrailEvent[] = [];
    let last = await this.lastEvent(sessionId);
    const started = Date.now();
    for (const event of events) {
      for (let attempt = 0; ; attempt++) {
        const seq = (last?.seq ?? 0) + 1;
        const sealed = sealEvent(sessionId, seq, last?.hash ?? GENESIS_HASH, event);
        try {
          await this.doc.send(
            new PutCommand({
              TableName: this.table,
              Item: toItem(sealed, this.expiry(event.at)),
              ConditionExpression: 'attribute_not_exists(#seq)',
              ExpressionAttributeNames: { '#seq': 'seq' },
            }),
          );
          stored.push(sealed);
          last = sealed;
          break;
        } catch (error) {
          if (!isConditionalCheckFailed(error)) throw error;
          if (attempt >= MAX_ATTEMPTS || Date.now() - started > MAX_CONTENTION_MS) {
            throw new ServiceUnavailableError(`trail of session ${sessionId} is too contended`, error);
          }
          // Someone else took this seq: back off a little (jittered), then continue after their event.
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 * 1.5 ** attempt)));
          last = await this.lastEvent(sessionId);
        }
      }
    }
    if (stored.length > 0) await this.updateHead(sessionId, stored);
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

  /**
   * Moves the head forward to the last event written here (never backwards: a concurrent writer may
   * already have moved it further) and adds what the events tell about the session to its summary.
   */
  private async updateHead(sessionId: string, stored: readonly StoredTrailEvent[]): Promise<void> {
    const first = stored[0];
    const last = stored[stored.length - 1];
    const sets: Record<string, Set<string>> = {
      principals: new Set(stored.map((e) => e.principal)),
      principalNames: new Set(stored.map((e) => e.principalName)),
      targets: new Set(stored.flatMap((e) => (e.target ? [e.target] : []))),
      outcomes: new Set(stored.flatMap((e) => (e.outcome ? [e.outcome] : []))),
      statuses: new Set(stored.flatMap((e) => (e.status ? [e.status] : []))),
    };
    const names: Record<string, string> = {
      '#kind': 'kind',
      '#day': 'sessionDay',
      '#started': 'startedAt',
      '#exp': 'expiresAtEpoch',
    };
    const values: Record<string, unknown> = {
      ':kind': HEAD_KIND,
      ':day': first.at.slice(0, 10),
      ':started': first.at,
      ':exp': this.expiry(last.at),
    };
    const adds: string[] = [];
    for (const [name, set] of Object.entries(sets)) {
      if (set.size === 0) continue;
      names[`#${name}`] = name;
      values[`:${name}`] = set;
      adds.push(`#${name} :${name}`);
    }
    const base =
      'SET #kind = :kind, #day = if_not_exists(#day, :day), #started = if_not_exists(#started, :started), #exp = :exp';
    const add = adds.length ? ` ADD ${adds.join(', ')}` : '';
    const key = { sessionId, seq: HEAD_SEQ };
    try {
      try {
        await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key,
            UpdateExpression: `${base}, #lastSeq = :lastSeq, #lastHash = :lastHash, #lastAt = :lastAt${add}`,
            ConditionExpression: 'attribute_not_exists(#lastSeq) OR #lastSeq < :lastSeq',
            ExpressionAttributeNames: {
              ...names,
              '#lastSeq': 'lastSeq',
              '#lastHash': 'lastHash',
              '#lastAt': 'lastAt',
            },
            ExpressionAttributeValues: {
              ...values,
              ':lastSeq': last.seq,
              ':lastHash': last.hash,
              ':lastAt': last.at,
            },
          }),
        );
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
        // The head is already past these events; only the summary sets need what they add.
        await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: key,
            UpdateExpression: `${base}${add}`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          }),
        );
      }
    } catch (error) {
      // The events are written and chained; a stale head only delays listings. Say so, do not fail.
      this.log?.({ level: 'error', msg: 'trail head update failed', sessionId, error: String(error) });
    }
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
