/**
 * Warden's invariants, checked from the outside after a run against the local twin: the database
 * side's own record of what it ran (the Data API endpoint's statement log) and the AWS side's (the
 * calls the target account's enforcer let through, by the session that signed them) are compared
 * with the audit store (Requests and Audit tables), and logs plus trail are scanned for raw PII and
 * tokens.
 * Used by the load test (bench/load.ts) and the fault tests (test/integration/faults.test.ts).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { PGlite } from '@electric-sql/pglite';
import type { RequestRecord, RequestStatus } from '../../lambdas/core/types.js';
import {
  DEMO_MASKED_READ_ROLE,
  DEMO_MASKED_WRITE_ROLE,
  DEMO_READ_ROLE,
  DEMO_WRITE_ROLE,
} from './demo-data.js';
import { CHECK_MARK } from '../../lambdas/core/masking/db-profiles.js';

/** What the database side ran (the shape of the Data API twin's statement log). */
export interface RanStatement {
  readonly sql: string;
  readonly ok: boolean;
  readonly role: string;
}

/** A governed AWS call the target's service let through (the twin's enforcer allowed and ran it). */
export interface ServedAwsCall {
  /** `dynamodb:PutItem` */
  readonly action: string;
  /**
   * The `warden:request-id` tag of the session that signed it (Warden opens one per request);
   * undefined when no session Warden opened did.
   */
  readonly requestId?: string;
}

export interface InvariantInput {
  readonly statementLog: ReadonlyArray<RanStatement>;
  /** The AWS side's own record of what it ran for governed AWS calls. @default none */
  readonly awsCalls?: ReadonlyArray<ServedAwsCall>;
  /** Every item of the Requests table. */
  readonly requests: readonly RequestRecord[];
  /** Every item of the Audit table (the session trail), as stored. */
  readonly trail: readonly Record<string, unknown>[];
  /** Everything the handlers wrote to stdout/stderr. */
  readonly logs: readonly string[];
  /** Values that must never appear in logs or trail: raw PII of the demo data, bearer tokens. */
  readonly secrets: readonly Secret[];
  /**
   * Marks (unique text in the statement) of the explains that were answered 200: each must have
   * its `explained` event in the trail, since an explain is recorded before it is answered.
   */
  readonly answeredExplains?: readonly string[];
  /** @default the demo roles */
  readonly roles?: {
    readonly read: string;
    readonly write: string;
    /** The masked profile's users (docs/masking.md). */
    readonly maskedRead?: string;
    readonly maskedWrite?: string;
  };
}

export interface Secret {
  readonly kind: string;
  readonly value: string;
}

export interface InvariantResult {
  readonly id: number;
  readonly name: string;
  /** How many items the check looked at. */
  readonly checked: number;
  readonly violations: readonly string[];
}

/** Statuses a request may have once its statement reached the database. */
const RAN_STATUSES: ReadonlySet<RequestStatus> = new Set(['executed', 'failed', 'running']);

/** A read runs once, bounded (boundedRead in lambdas/core/requests.ts): the same read, wrapped. */
const BOUNDED_READ = /^SELECT \* FROM \(\n([\s\S]*)\n\) AS warden_bounded LIMIT \d+$/;

/** The statement as submitted, from what the database ran: a bounded read unwrapped. */
export function submittedSql(ran: string): string {
  const bounded = BOUNDED_READ.exec(ran);
  return bounded ? bounded[1] : ran;
}

function approvalsOf(record: RequestRecord): { approvers: Set<string>; denied: boolean } {
  const votes = record.votes ?? [];
  const approvers = new Set(
    votes.filter((v) => v.decision === 'approve' && v.by !== record.principal).map((v) => v.by),
  );
  return { approvers, denied: votes.some((v) => v.decision === 'deny') };
}

/** Allowed outright, or approved by enough distinct approvers other than the requester and never denied. */
function mayRun(record: RequestRecord): boolean {
  if (record.decision.outcome === 'allow') return true;
  if (record.decision.outcome !== 'approval_required') return false;
  const { approvers, denied } = approvalsOf(record);
  return !denied && approvers.size >= Math.max(1, record.requiredApprovals ?? 1);
}

function detailOf(item: Record<string, unknown>): Record<string, unknown> {
  const d = item.detail;
  if (typeof d === 'string') {
    try {
      return JSON.parse(d) as Record<string, unknown>;
    } catch {
      return {};
    }
  }
  return (d as Record<string, unknown> | undefined) ?? {};
}

const short = (sql: string): string => JSON.stringify(sql.length > 80 ? `${sql.slice(0, 77)}...` : sql);

/** Redacted for printing: a violation report must not itself leak the value. */
function hint(secret: Secret): string {
  return `${secret.kind} ${secret.value.slice(0, 3)}…(${secret.value.length} chars)`;
}

/**
 * Finds which secrets occur in `text`. Secrets are indexed by a short prefix, so the text is read
 * once however many thousands of values are searched for.
 */
export function findSecrets(text: string, secrets: readonly Secret[]): Secret[] {
  const K = 6;
  const byPrefix = new Map<string, Secret[]>();
  for (const s of secrets) {
    if (s.value.length < K) continue;
    const p = s.value.slice(0, K);
    const list = byPrefix.get(p);
    if (list) list.push(s);
    else byPrefix.set(p, [s]);
  }
  const found = new Set<Secret>();
  for (let i = 0; i + K <= text.length; i++) {
    const candidates = byPrefix.get(text.slice(i, i + K));
    if (!candidates) continue;
    for (const s of candidates) if (!found.has(s) && text.startsWith(s.value, i)) found.add(s);
  }
  return [...found];
}

export function checkInvariants(input: InvariantInput): InvariantResult[] {
  const roles = input.roles ?? {
    read: DEMO_READ_ROLE,
    write: DEMO_WRITE_ROLE,
    maskedRead: DEMO_MASKED_READ_ROLE,
    maskedWrite: DEMO_MASKED_WRITE_ROLE,
  };
  const readRoles = new Set([roles.read, roles.maskedRead].filter((r) => r !== undefined));
  const writeRoles = new Set([roles.write, roles.maskedWrite].filter((r) => r !== undefined));
  const bySql = new Map<string, RequestRecord[]>();
  for (const r of input.requests) {
    if (r.operation.kind !== 'sql') continue;
    const list = bySql.get(r.operation.sql);
    if (list) list.push(r);
    else bySql.set(r.operation.sql, [r]);
  }

  const recorded: string[] = [];
  const authorized: string[] = [];
  const attempts = new Map<string, number>();
  for (const entry of input.statementLog) {
    // `warden db check` probes (Warden's own proof that the database masks) are not requests.
    if (entry.sql.startsWith(CHECK_MARK)) continue;
    // A blast-radius estimate (lambdas/core/blast-radius.ts): a plan, never an execution (no ANALYZE),
    // of a derived read, as a read-only user. It belongs to its request but is not the request's text.
    if (entry.sql.startsWith('EXPLAIN (FORMAT JSON) SELECT ') && readRoles.has(entry.role)) continue;
    const bounded = BOUNDED_READ.exec(entry.sql);
    const sql = bounded ? bounded[1] : entry.sql;
    // A bounded read's body is the submitted text without its terminating semicolon and what follows.
    const exact = bySql.get(sql) ?? [];
    const candidates =
      bounded && exact.length === 0
        ? input.requests.filter(
            (r) =>
              r.operation.kind === 'sql' &&
              r.operation.sql.startsWith(sql) &&
              /^\s*;/.test(r.operation.sql.slice(sql.length)),
          )
        : exact;
    const ran = candidates.filter((r) => RAN_STATUSES.has(r.status));
    if (ran.length === 0) {
      recorded.push(
        candidates.length === 0
          ? `no audit record holds the statement ${short(entry.sql)}`
          : `the records of ${short(entry.sql)} say ${candidates.map((r) => `${r.id}: ${r.status}`).join(', ')}, not executed/failed/running`,
      );
      continue;
    }
    const allowed = ran.filter((r) => mayRun(r));
    if (allowed.length === 0) {
      authorized.push(
        `${short(entry.sql)} ran for ${ran.map((r) => `${r.id} (${r.decision.outcome})`).join(', ')} without an allow or an approval`,
      );
    }
    const readOnly = allowed.every(
      (r) => r.classification?.kind === 'sql' && r.classification.class === 'read',
    );
    if (allowed.length > 0 && writeRoles.has(entry.role) && readOnly) {
      authorized.push(`the read ${short(entry.sql)} ran as the write user ${entry.role}`);
    }
    if (!readRoles.has(entry.role) && !writeRoles.has(entry.role)) {
      authorized.push(`${short(entry.sql)} ran as an unexpected role "${entry.role}"`);
    }
    if (bounded && !readRoles.has(entry.role)) {
      authorized.push(`a bounded re-run of ${short(sql)} used the role ${entry.role}`);
    }
    // A bounded re-run is the same read again by design (rds-data.ts); it is not a second execution.
    if (!bounded) attempts.set(sql, (attempts.get(sql) ?? 0) + 1);
  }

  const twice: string[] = [];
  for (const [sql, count] of attempts) {
    const records = (bySql.get(sql) ?? []).filter((r) => RAN_STATUSES.has(r.status)).length;
    if (count > records) {
      twice.push(`${short(sql)} reached the database ${count} times for ${records} request(s)`);
    }
  }

  const decidedTwice: string[] = [];
  const terminalEvents = new Map<string, number>();
  for (const item of input.trail) {
    if (item.type !== 'approval_decided' || typeof item.requestId !== 'string') continue;
    if (detailOf(item).terminal === true) {
      terminalEvents.set(item.requestId, (terminalEvents.get(item.requestId) ?? 0) + 1);
    }
  }
  let approvalRecords = 0;
  for (const r of input.requests) {
    if (r.decision.outcome !== 'approval_required') continue;
    approvalRecords += 1;
    const votes = r.votes ?? [];
    const voters = votes.map((v) => v.by);
    if (new Set(voters).size !== voters.length) decidedTwice.push(`${r.id}: one approver voted twice`);
    if (votes.some((v) => v.by === r.principal)) decidedTwice.push(`${r.id}: the requester voted`);
    const { approvers, denied } = approvalsOf(r);
    const required = Math.max(1, r.requiredApprovals ?? 1);
    if (r.status === 'denied' && r.decidedBy !== 'warden' && !denied) {
      decidedTwice.push(`${r.id}: denied without a deny vote`);
    }
    if (['approved', 'running', 'executed'].includes(r.status) && (denied || approvers.size < required)) {
      decidedTwice.push(
        `${r.id}: ${r.status} with ${approvers.size}/${required} approvals${denied ? ' and a deny' : ''}`,
      );
    }
    if (denied && votes.findIndex((v) => v.decision === 'deny') !== votes.length - 1) {
      decidedTwice.push(`${r.id}: votes were recorded after a terminal deny`);
    }
    const terminal = r.status !== 'pending_approval';
    if (terminal && r.decidedBy === undefined && r.status !== 'failed') {
      decidedTwice.push(`${r.id}: ${r.status} but no decidedBy`);
    }
    if ((terminalEvents.get(r.id) ?? 0) > 1) {
      decidedTwice.push(`${r.id}: ${terminalEvents.get(r.id)} terminal approval decisions in the trail`);
    }
  }

  const leaks: string[] = [];
  const places: [string, string][] = [
    ['logs', input.logs.join('\n')],
    ['Requests table', JSON.stringify(input.requests)],
    ['Audit table (trail)', JSON.stringify(input.trail)],
  ];
  for (const [where, text] of places) {
    const found = findSecrets(text, input.secrets);
    const byKind = new Map<string, Secret[]>();
    for (const s of found) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s]);
    for (const [kind, list] of byKind) {
      leaks.push(`${list.length} raw ${kind} value(s) in the ${where}, e.g. ${hint(list[0])}`);
    }
  }

  // The AWS path, from the service's side: each call it served belongs to a request recorded and
  // allowed (or approved) for that very action, and a write reached it once (a read may be sent a
  // second time by the SDK's retry: AwsCall.retry).
  const byId = new Map(input.requests.map((r) => [r.id, r]));
  const awsViolations: string[] = [];
  const awsSends = new Map<string, number>();
  for (const call of input.awsCalls ?? []) {
    if (call.requestId === undefined) {
      awsViolations.push(`${call.action} was signed by no session Warden opened for a request`);
      continue;
    }
    const record = byId.get(call.requestId);
    if (!record) {
      awsViolations.push(`${call.action} ran for ${call.requestId}, which has no audit record`);
      continue;
    }
    if (!RAN_STATUSES.has(record.status)) {
      awsViolations.push(`${call.action} ran for ${record.id}, recorded ${record.status}`);
    }
    if (!mayRun(record)) {
      awsViolations.push(
        `${call.action} ran for ${record.id} (${record.decision.outcome}) without an allow or an approval`,
      );
    }
    const op = record.operation;
    const recorded = op.kind === 'aws' ? `${op.service.toLowerCase()}:${op.action}` : op.kind;
    if (recorded !== call.action) {
      awsViolations.push(`${call.action} ran for ${record.id}, whose record is for ${recorded}`);
    }
    awsSends.set(record.id, (awsSends.get(record.id) ?? 0) + 1);
  }
  for (const [id, sends] of awsSends) {
    const record = byId.get(id)!;
    const read = record.classification?.kind === 'aws' && record.classification.class === 'read';
    if (sends > (read ? 2 : 1)) {
      awsViolations.push(`${id} (${read ? 'a read' : 'not a read'}) reached the AWS service ${sends} times`);
    }
  }

  const explainedStatements = input.trail
    .filter((e) => e.type === 'explained' && typeof e.statement === 'string')
    .map((e) => e.statement as string);
  const unrecordedExplains = (input.answeredExplains ?? [])
    .filter((mark) => !explainedStatements.some((st) => st.includes(mark)))
    .map((mark) => `an explain answered 200 has no explained event (${mark})`);

  return [
    {
      id: 1,
      name: 'every statement that reached the database has an audit record (executed/failed/running)',
      checked: input.statementLog.length,
      violations: recorded,
    },
    {
      id: 2,
      name: 'nothing ran without an allow or an approval (and reads ran as the read-only user)',
      checked: input.statementLog.length,
      violations: authorized,
    },
    {
      id: 3,
      name: 'no approval was decided twice (votes, decidedBy and trail agree)',
      checked: approvalRecords,
      violations: decidedTwice,
    },
    {
      id: 4,
      name: 'no request ran twice (statement log count per request <= 1)',
      checked: attempts.size,
      violations: twice,
    },
    {
      id: 5,
      name: 'no raw PII or token in logs or the trail',
      checked: input.secrets.length,
      violations: leaks,
    },
    {
      id: 7,
      name: 'every explain answered 200 is in the trail (recorded before the answer)',
      checked: input.answeredExplains?.length ?? 0,
      violations: unrecordedExplains,
    },
    {
      id: 8,
      name: 'every AWS call the service ran has an audit record that allowed that action, and a write ran once',
      checked: input.awsCalls?.length ?? 0,
      violations: awsViolations,
    },
  ];
}

export function formatInvariants(results: readonly InvariantResult[], maxShown = 5): string {
  const lines: string[] = [];
  for (const r of results) {
    const ok = r.violations.length === 0;
    lines.push(
      `${ok ? 'PASS' : 'FAIL'}  (${r.id}) ${r.name}: ${r.violations.length} violation(s), ${r.checked} checked`,
    );
    for (const v of r.violations.slice(0, maxShown)) lines.push(`        - ${v}`);
    if (r.violations.length > maxShown) lines.push(`        … and ${r.violations.length - maxShown} more`);
  }
  return lines.join('\n');
}

async function scanAll(doc: DynamoDBDocumentClient, table: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/**
 * Reads the Requests and Audit tables straight from the twin's DynamoDB (never through the fault
 * proxy: the checker must see what is stored, not what a faulty network lets through).
 */
export async function readAuditState(twin: {
  readonly dynamoEndpoint: string;
  readonly tableNames: Record<string, string>;
}): Promise<{ requests: RequestRecord[]; trail: Record<string, unknown>[] }> {
  const client = new DynamoDBClient({
    endpoint: twin.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local-twin', secretAccessKey: 'local-twin' },
  });
  const doc = DynamoDBDocumentClient.from(client);
  try {
    const [requests, trail] = await Promise.all([
      scanAll(doc, twin.tableNames.Requests),
      scanAll(doc, twin.tableNames.Audit),
    ]);
    return { requests: requests as unknown as RequestRecord[], trail };
  } finally {
    client.destroy();
  }
}

/** The demo database's raw PII: every email, card number, SSN and IBAN (read straight from PGlite). */
export async function demoSecrets(db: PGlite): Promise<Secret[]> {
  const { rows } = await db.query<{
    email: string;
    card_number: string | null;
    ssn: string | null;
    iban: string | null;
  }>('SELECT email, card_number, ssn, iban FROM public.customers');
  const out: Secret[] = [];
  for (const row of rows) {
    out.push({ kind: 'email', value: row.email });
    if (row.card_number) out.push({ kind: 'card number', value: row.card_number });
    if (row.ssn) out.push({ kind: 'SSN', value: row.ssn });
    if (row.iban) out.push({ kind: 'IBAN', value: row.iban });
  }
  return out;
}

/** A bearer token, and its signature alone (a leaked signature is as bad as the token). */
export function tokenSecrets(tokens: Iterable<string>): Secret[] {
  const out: Secret[] = [];
  for (const token of tokens) {
    out.push({ kind: 'bearer token', value: token });
    const signature = token.split('.')[2];
    if (signature && signature.length >= 16) out.push({ kind: 'token signature', value: signature });
  }
  return out;
}

export interface LogCapture {
  readonly lines: string[];
  restore(): void;
}

/**
 * Captures what the in-process handlers print (they log JSON lines with console.log / error).
 * `passThrough: false` keeps the terminal quiet during a load run.
 */
export function captureLogs(options: { passThrough?: boolean } = {}): LogCapture {
  const lines: string[] = [];
  const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
  const originals = methods.map((m) => console[m]);
  const text = (a: unknown): string =>
    typeof a === 'string' ? a : a instanceof Error ? (a.stack ?? String(a)) : JSON.stringify(a);
  // Test runners replace `console` with their own; plain Node writes it to process.stdout. Both
  // are captured, and a console line passed through is not counted twice.
  let inConsole = false;
  methods.forEach((m, i) => {
    console[m] = (...args: unknown[]) => {
      lines.push(args.map(text).join(' '));
      if (!options.passThrough) return;
      inConsole = true;
      try {
        originals[i].apply(console, args);
      } finally {
        inConsole = false;
      }
    };
  });
  const streams = [process.stdout, process.stderr] as const;
  const writes = streams.map((s) => s.write);
  streams.forEach((stream, i) => {
    stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
      if (!inConsole) {
        lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      }
      if (!options.passThrough && !inConsole) return true;
      return (writes[i] as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
    }) as typeof stream.write;
  });
  return {
    lines,
    restore() {
      methods.forEach((m, i) => {
        console[m] = originals[i];
      });
      streams.forEach((stream, i) => {
        stream.write = writes[i];
      });
    },
  };
}
