/**
 * `npm run load`: many concurrent clients against a local twin started here WITH faults injected,
 * then Warden's invariants checked from the outside and printed. Exits non-zero when one breaks.
 *
 * Bounded in count and time (defaults: 32 clients, 60 s or 3,000 requests, whichever comes first),
 * loopback only. Flags: --clients N --duration S --requests N --seed N --customers N --no-faults
 * --faults '<json>' (see lib/local/faults.ts).
 *
 * The mix: governed reads (alice, the agent), masked reads (carol), unmasked reads (bob, dba: the
 * clear values must reach only him, never logs or trail), denied writes (GRANT), writes that need
 * an approval (decided by bob, sometimes raced by erin), governed AWS reads (STS AssumeRole), AWS
 * writes that need an approval, bad
 * tokens and bad input. Every generated
 * statement carries a unique literal so the database's statement log maps back to one request.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { devToken } from '../bin/cli-client.js';
import { DEMO_AWS_TABLE_NAME } from '../lib/local/aws-enforcer.js';
import type { FaultConfig } from '../lib/local/faults.js';
import {
  captureLogs,
  checkInvariants,
  demoSecrets,
  findSecrets,
  formatInvariants,
  readAuditState,
  tokenSecrets,
  type InvariantResult,
  type ServedAwsCall,
  type Secret,
} from '../lib/local/invariants.js';
import { startLocalTwin, type Twin } from '../lib/local/twin.js';

export const REQUEST_KINDS = [
  'read',
  'masked-read',
  'unmasked-read',
  'denied-write',
  'approval-write',
  'aws-read',
  'aws-write',
  'leak-probe',
  'explain-probe',
  'bad-token',
  'bad-input',
] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** Relative weights of the mix. */
export const DEFAULT_MIX: Record<RequestKind, number> = {
  read: 40,
  'masked-read': 15,
  'unmasked-read': 5,
  'denied-write': 10,
  'approval-write': 10,
  'aws-read': 5,
  'aws-write': 3,
  'leak-probe': 5,
  'explain-probe': 5,
  'bad-token': 10,
  'bad-input': 10,
};

/** Faults a load run injects unless told otherwise: a few percent of everything, of every kind. */
export const DEFAULT_FAULTS: FaultConfig = {
  rules: [
    // The combined first write (request record + its trail events, one transaction): must give
    // 503 and nothing run; a lost answer to it is retried idempotently by the SDK.
    {
      service: 'dynamodb',
      operation: 'TransactWriteItems',
      bodyIncludes: 'attribute_not_exists(#id)',
      fault: 'throttle',
      probability: 0.03,
    },
    {
      service: 'dynamodb',
      operation: 'TransactWriteItems',
      bodyIncludes: 'attribute_not_exists(#id)',
      fault: 'error',
      probability: 0.01,
    },
    // The outcome write (record + outcome events) and any other trail append.
    {
      service: 'dynamodb',
      operation: 'TransactWriteItems',
      table: 'Audit',
      fault: 'error',
      probability: 0.01,
    },
    { service: 'dynamodb', operation: 'PutItem', table: 'Requests', fault: 'throttle', probability: 0.03 },
    { service: 'dynamodb', table: 'Requests', fault: 'lost-response', probability: 0.01 },
    { service: 'dynamodb', fault: 'throttle', probability: 0.01 },
    { service: 'dynamodb', fault: 'error', probability: 0.005 },
    { service: 'dynamodb', fault: 'timeout', probability: 0.005, holdMs: 400 },
    { service: 'rds-data', fault: 'error', probability: 0.02 },
    {
      service: 'rds-data',
      fault: 'error',
      errorType: 'StatementTimeoutException',
      probability: 0.01,
    },
    { service: 'rds-data', fault: 'throttle', probability: 0.01 },
    { service: 'rds-data', fault: 'timeout', probability: 0.01, holdMs: 400 },
    // The statement runs, the answer is lost: recorded as failed, never run a second time.
    { service: 'rds-data', fault: 'lost-response', probability: 0.01 },
    { service: 'sfn', fault: 'error', probability: 0.05 },
    { service: 'sfn', fault: 'throttle', probability: 0.03 },
    { service: 'sts', fault: 'throttle', probability: 0.05 },
    { service: 'sts', fault: 'error', probability: 0.02 },
    // The governed AWS calls themselves (the target's DynamoDB): a lost answer means the call ran;
    // invariant 8 checks each one the service ran against its record (a read may be sent twice).
    { service: 'target-dynamodb', fault: 'lost-response', probability: 0.03 },
    { service: 'target-dynamodb', fault: 'error', probability: 0.03 },
  ],
  kill: { probability: 0.02, maxDelayMs: 150, paths: ['/v1/'] },
};

export interface LoadTokens {
  readonly alice: string;
  readonly carol: string;
  readonly bob: string;
  readonly erin: string;
  readonly agent: string;
}

export interface LoadOptions {
  /** Concurrency levels, run one after the other. @default [1, 8, clients] */
  readonly phases?: readonly number[];
  readonly clients: number;
  readonly maxRequests: number;
  readonly durationMs: number;
  /** Customer ids the statements pick from (1..customers). */
  readonly customers: number;
  readonly mix?: Partial<Record<RequestKind, number>>;
  readonly seed?: number;
  /** Decide approval-required writes through POST /v1/approvals/{id}/decision. @default true */
  readonly approvals?: boolean;
  /** Raw values masked callers must never receive (the demo data's PII): every answer is scanned. */
  readonly forbidden?: readonly Secret[];
  /** Called after each concurrency level. */
  readonly onPhase?: (phase: PhaseReport) => void;
}

export interface PhaseReport {
  readonly concurrency: number;
  readonly requests: number;
  readonly elapsedMs: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Governed reads that answered 200. */
  readonly readRps: number;
  readonly readP50: number;
  readonly readP99: number;
}

export interface LoadReport {
  readonly runId: string;
  readonly sent: Record<RequestKind, number>;
  /** kind → HTTP status (or `network` when the connection broke) → count */
  readonly answers: Record<RequestKind, Record<string, number>>;
  readonly approvals: {
    readonly decisions: number;
    readonly answers: Record<string, number>;
    readonly raced: number;
    /** Set when the decision route is missing: the approval mix was not decided. */
    readonly skipped?: string;
  };
  readonly phases: readonly PhaseReport[];
  /** Answers that must never happen (a bad token served, a denied write run…). */
  readonly unexpected: readonly string[];
  /** Tags of the explains answered 200 (each must be in the trail: invariant 7). */
  readonly answeredExplains: readonly string[];
  /** Every bearer token sent, good or bad (for the leak scan). */
  readonly tokensUsed: readonly string[];
}

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Answer {
  status: number | 'network';
  body: any;
  ms: number;
}

async function call(
  url: string,
  path: string,
  init: { token?: string; body?: string; contentType?: string; method?: string },
): Promise<Answer> {
  const started = performance.now();
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
  try {
    const res = await fetch(`${url}${path}`, {
      method: init.method ?? 'POST',
      headers,
      ...(init.body !== undefined ? { body: init.body } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, body, ms: performance.now() - started };
  } catch {
    // A killed invocation closes the socket: the client sees a network error, as with a real Lambda.
    return { status: 'network', body: undefined, ms: performance.now() - started };
  }
}

/** Bad tokens that must all be refused: garbage, a tampered signature, alg none, a foreign issuer. */
export function badTokens(good: string): string[] {
  const [h, p, s] = good.split('.');
  const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  const elevated = `${h}.${Buffer.from(JSON.stringify({ ...payload, groups: ['dba'] })).toString('base64url')}.${s}`;
  return ['not-a-jwt', flipped, none, elevated, `${good}x`];
}

const BAD_INPUTS: { body: string; contentType?: string }[] = [
  { body: '{"sql": "SELECT 1"' },
  { body: '{"sql": "SELECT 1"}', contentType: 'text/plain' },
  { body: '{"sql": "SELEC id FROM customers"}' },
  { body: '{"sql": "SELECT 1", "unexpected": true}' },
  { body: `{"sql": "SELECT 1", "parameters": ${'['.repeat(40)}${']'.repeat(40)}}` },
  { body: '{"sql": ""}' },
];

/** Runs the mixed workload; returns what was sent and answered. Never throws for a bad answer. */
export async function runLoad(url: string, tokens: LoadTokens, options: LoadOptions): Promise<LoadReport> {
  const random = prng(options.seed ?? 1);
  const runId = `L${Date.now().toString(36)}`;
  const mix = { ...DEFAULT_MIX, ...(options.mix ?? {}) };
  const kinds = REQUEST_KINDS.filter((k) => mix[k] > 0);
  const total = kinds.reduce((n, k) => n + mix[k], 0);
  const pickKind = (): RequestKind => {
    let x = random() * total;
    for (const k of kinds) {
      x -= mix[k];
      if (x < 0) return k;
    }
    return kinds[kinds.length - 1];
  };
  const bad = badTokens(tokens.alice);
  const sent = Object.fromEntries(REQUEST_KINDS.map((k) => [k, 0])) as Record<RequestKind, number>;
  const answers = Object.fromEntries(REQUEST_KINDS.map((k) => [k, {}])) as Record<
    RequestKind,
    Record<string, number>
  >;
  const approvalAnswers: Record<string, number> = {};
  let decisions = 0;
  let raced = 0;
  let approvalsSkipped: string | undefined = options.approvals === false ? 'disabled' : undefined;
  const unexpected: string[] = [];
  const answeredExplains: string[] = [];
  const pending: Promise<void>[] = [];
  let seq = 0;

  const decide = async (requestId: string): Promise<void> => {
    const decision = random() < 0.6 ? 'approve' : 'deny';
    const race = random() < 0.2;
    const voters = race ? [tokens.bob, tokens.erin] : [tokens.bob];
    if (race) raced += 1;
    const results = await Promise.all(
      voters.map((token) =>
        call(url, `/v1/approvals/${requestId}/decision`, {
          token,
          body: JSON.stringify({ decision, comment: `load ${runId}` }),
        }),
      ),
    );
    for (const r of results) {
      decisions += 1;
      approvalAnswers[String(r.status)] = (approvalAnswers[String(r.status)] ?? 0) + 1;
      if (r.status === 404 && r.body?.error?.message?.includes('no route')) approvalsSkipped = 'no route';
    }
  };

  const one = async (kind: RequestKind): Promise<{ kind: RequestKind; answer: Answer }> => {
    const n = ++seq;
    const tag = `${runId}-${n}`;
    const id = 1 + Math.floor(random() * options.customers);
    const sqlPath = '/v1/targets/demo/sql';
    const sqlBody = (sql: string) => JSON.stringify({ sql, justification: `load test ${tag}` });
    let answer: Answer;
    switch (kind) {
      case 'read':
        answer = await call(url, sqlPath, {
          token: n % 2 === 0 ? tokens.alice : tokens.agent,
          body: sqlBody(`SELECT id, name, created_at, '${tag}' AS tag FROM customers WHERE id = ${id}`),
        });
        break;
      case 'masked-read':
        answer = await call(url, sqlPath, {
          token: tokens.carol,
          body: sqlBody(
            `SELECT id, email, phone, card_number, ssn, iban, '${tag}' AS tag FROM customers WHERE id = ${id}`,
          ),
        });
        break;
      case 'unmasked-read':
        answer = await call(url, sqlPath, {
          token: tokens.bob,
          body: sqlBody(
            `SELECT id, email, card_number, ssn, iban, '${tag}' AS tag FROM customers WHERE id = ${id}`,
          ),
        });
        break;
      case 'denied-write':
        answer = await call(url, sqlPath, {
          token: n % 2 === 0 ? tokens.alice : tokens.agent,
          body: sqlBody(`GRANT SELECT ON customers TO PUBLIC /* ${tag} */`),
        });
        break;
      case 'approval-write':
        answer = await call(url, sqlPath, {
          token: n % 2 === 0 ? tokens.alice : tokens.agent,
          body: sqlBody(`UPDATE orders SET status = 'load-${tag}' WHERE id = ${id}`),
        });
        if (answer.status === 202 && answer.body?.requestId && !approvalsSkipped) {
          pending.push(decide(answer.body.requestId as string));
        }
        break;
      case 'aws-read':
        // Through STS AssumeRole with a one-call session policy (STS faults land here).
        answer = await call(url, '/v1/targets/demo-aws/aws', {
          token: tokens.agent,
          body: JSON.stringify({
            service: 'dynamodb',
            action: 'GetItem',
            input: { TableName: DEMO_AWS_TABLE_NAME, Key: { sku: { S: 'WID-001' } } },
            justification: `load test ${tag}`,
          }),
        });
        break;
      case 'aws-write':
        // An additive write that waits for a DBA: once approved it must reach the service once
        // (invariant 8), whatever its answer meets on the way back.
        answer = await call(url, '/v1/targets/demo-aws/aws', {
          token: tokens.agent,
          body: JSON.stringify({
            service: 'dynamodb',
            action: 'UpdateItem',
            input: {
              TableName: DEMO_AWS_TABLE_NAME,
              Key: { sku: { S: 'GIZ-042' } },
              UpdateExpression: 'ADD quantity :one',
              ExpressionAttributeValues: { ':one': { N: '1' } },
            },
            justification: `load test ${tag}`,
          }),
        });
        if (answer.status === 202 && answer.body?.requestId && !approvalsSkipped) {
          pending.push(decide(answer.body.requestId as string));
        }
        break;
      case 'leak-probe':
        // A masked caller trying to read raw values through the database's error messages.
        answer = await call(url, sqlPath, {
          token: tokens.carol,
          body: sqlBody(
            `SELECT ${n % 2 === 0 ? 'ssn' : 'email'}::int AS v, '${tag}' AS tag FROM customers WHERE id = ${id}`,
          ),
        });
        break;
      case 'explain-probe': {
        // Asking policy about a statement that carries a raw SSN: the answer must be recorded
        // (before it is given) and the trail must hold the SSN masked.
        const ssns = options.forbidden?.filter((f) => f.kind === 'SSN') ?? [];
        const ssn = ssns.length > 0 ? ssns[n % ssns.length].value : '123-45-6789';
        answer = await call(url, '/v1/targets/demo/explain', {
          token: n % 2 === 0 ? tokens.carol : tokens.agent,
          body: JSON.stringify({ sql: `SELECT id FROM customers WHERE ssn = '${ssn}' AND '${tag}' <> ''` }),
        });
        if (answer.status === 200) answeredExplains.push(tag);
        break;
      }
      case 'bad-token': {
        const token = bad[n % bad.length];
        answer = await call(url, sqlPath, {
          token,
          body: sqlBody(`SELECT id FROM customers WHERE id = ${id} AND '${tag}' <> ''`),
        });
        break;
      }
      case 'bad-input': {
        const input = BAD_INPUTS[n % BAD_INPUTS.length];
        answer = await call(url, sqlPath, {
          token: tokens.alice,
          body: input.body,
          contentType: input.contentType,
        });
        break;
      }
    }
    const s = answer.status;
    const ok2xx = typeof s === 'number' && s >= 200 && s < 300;
    if ((kind === 'bad-token' || kind === 'bad-input' || kind === 'denied-write') && ok2xx) {
      unexpected.push(`${kind} ${tag} was answered ${s}`);
    }
    if (kind === 'bad-token' && typeof s === 'number' && s !== 401 && s < 500) {
      unexpected.push(`bad token ${tag} was answered ${s}, not 401`);
    }
    if ((kind === 'approval-write' || kind === 'aws-write') && s === 200) {
      unexpected.push(`${kind} ${tag} ran without approval`);
    }
    if (kind !== 'unmasked-read' && options.forbidden?.length && answer.body !== undefined) {
      const leaked = findSecrets(JSON.stringify(answer.body), options.forbidden);
      if (leaked.length > 0) {
        unexpected.push(
          `${kind} ${tag}: a masked caller received ${leaked.length} raw ${leaked[0].kind} value(s)`,
        );
      }
    }
    return { kind, answer };
  };

  const levels = [...new Set(options.phases ?? [1, 8, options.clients])]
    .filter((c) => c >= 1 && c <= options.clients)
    .sort((a, b) => a - b);
  const phases: PhaseReport[] = [];
  for (const concurrency of levels) {
    const budget = Math.max(concurrency, Math.floor(options.maxRequests / levels.length));
    const deadline = performance.now() + options.durationMs / levels.length;
    const latencies: number[] = [];
    const readLatencies: number[] = [];
    let issued = 0;
    const started = performance.now();
    const client = async (): Promise<void> => {
      while (issued < budget && performance.now() < deadline) {
        issued += 1;
        const kind = pickKind();
        sent[kind] += 1;
        const { answer } = await one(kind);
        const key = String(answer.status);
        answers[kind][key] = (answers[kind][key] ?? 0) + 1;
        latencies.push(answer.ms);
        if ((kind === 'read' || kind === 'masked-read') && answer.status === 200)
          readLatencies.push(answer.ms);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, () => client()));
    const elapsedMs = performance.now() - started;
    latencies.sort((a, b) => a - b);
    readLatencies.sort((a, b) => a - b);
    phases.push({
      concurrency,
      requests: latencies.length,
      elapsedMs,
      rps: (latencies.length * 1000) / elapsedMs,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      readRps: (readLatencies.length * 1000) / elapsedMs,
      readP50: percentile(readLatencies, 50),
      readP99: percentile(readLatencies, 99),
    });
    options.onPhase?.(phases[phases.length - 1]);
  }
  await Promise.all(pending);
  return {
    runId,
    sent,
    answers,
    approvals: {
      decisions,
      answers: approvalAnswers,
      raced,
      ...(approvalsSkipped ? { skipped: approvalsSkipped } : {}),
    },
    phases,
    unexpected,
    answeredExplains,
    tokensUsed: [...Object.values(tokens), ...bad],
  };
}

/** Waits until no API invocation (killed ones included) is running, then a little for workflows. */
export async function settle(twin: Twin, maxMs = 30_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while ((twin.faults?.inFlight() ?? 0) > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  // Approved requests run in the workflow's Execute step, after the API answered.
  let last = -1;
  while (twin.statementLog.length !== last && Date.now() < deadline) {
    last = twin.statementLog.length;
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** The governed AWS calls the twin's AWS enforcer let through, with the request each session is for. */
export function servedAwsCalls(twin: Twin): ServedAwsCall[] {
  return twin.aws.enforcer.decisions
    .filter((d) => d.allowed)
    .map((d) => {
      const requestId = twin.aws.registry.get(d.accessKeyId)?.tags['warden:request-id'];
      return { action: d.action, ...(requestId !== undefined ? { requestId } : {}) };
    });
}

/** Reads the twin's audit state and checks every invariant. */
export async function checkTwinInvariants(
  twin: Twin,
  logs: readonly string[],
  tokensUsed: readonly string[],
  answeredExplains: readonly string[] = [],
): Promise<InvariantResult[]> {
  const [{ requests, trail }, pii] = await Promise.all([readAuditState(twin), demoSecrets(twin.db)]);
  return checkInvariants({
    statementLog: twin.statementLog,
    awsCalls: servedAwsCalls(twin),
    requests,
    trail,
    logs,
    secrets: [...pii, ...tokenSecrets(tokensUsed)],
    answeredExplains,
  });
}

export async function fetchLoadTokens(url: string): Promise<LoadTokens> {
  const [alice, carol, bob, erin, agent] = await Promise.all(
    ['alice', 'carol', 'bob', 'erin', 'agent-demo'].map((u) => devToken(url, u)),
  );
  return { alice, carol, bob, erin, agent };
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padStart(widths[i])).join('  ')).join('\n');
}

export function formatLoadReport(report: LoadReport, faults: Twin['faults']): string {
  const out: string[] = [];
  out.push(`Requests sent by kind (answers by HTTP status; "network" = connection cut by a kill):`);
  for (const k of REQUEST_KINDS) {
    if (report.sent[k] === 0) continue;
    const a = Object.entries(report.answers[k])
      .sort()
      .map(([s, n]) => `${s}×${n}`)
      .join(' ');
    out.push(`  ${k.padEnd(15)} ${String(report.sent[k]).padStart(6)}   ${a}`);
  }
  const total = Object.values(report.sent).reduce((a, b) => a + b, 0);
  out.push(`  ${'total'.padEnd(15)} ${String(total).padStart(6)}`);
  const ap = report.approvals;
  out.push(
    ap.skipped
      ? `Approval decisions: skipped (${ap.skipped})`
      : `Approval decisions: ${ap.decisions} (${ap.raced} raced by two approvers)   ${Object.entries(
          ap.answers,
        )
          .map(([s, n]) => `${s}×${n}`)
          .join(' ')}`,
  );
  if (faults) {
    const stats = faults.stats();
    const injected = Object.entries(stats.injected).sort();
    const sum = injected.reduce((n, [, c]) => n + c, 0);
    out.push(`Faults injected: ${sum + stats.killed} (${stats.forwarded} calls passed through untouched)`);
    for (const [k, n] of injected) out.push(`  ${k.padEnd(44)} ${n}`);
    out.push(`  ${'api invocation killed mid-request'.padEnd(44)} ${stats.killed}`);
  } else {
    out.push('Faults injected: none (--no-faults)');
  }
  out.push('Throughput and latency by concurrency (all kinds; governed reads answered 200):');
  out.push(
    table([
      ['clients', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'reads/s', 'read p50', 'read p99'],
      ...report.phases.map((p) => [
        p.concurrency,
        p.requests,
        p.rps.toFixed(1),
        p.p50.toFixed(1),
        p.p99.toFixed(1),
        p.readRps.toFixed(1),
        p.readP50.toFixed(1),
        p.readP99.toFixed(1),
      ]),
    ])
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '32' },
      duration: { type: 'string', default: '60' },
      requests: { type: 'string', default: '3000' },
      seed: { type: 'string', default: '1' },
      customers: { type: 'string', default: '500' },
      faults: { type: 'string' },
      'no-faults': { type: 'boolean', default: false },
    },
  });
  // Bound before the capture replaces process.stdout.write, so progress still reaches the terminal.
  const write = process.stdout.write.bind(process.stdout);
  const print = (line: string) => void write(`${line}\n`);
  const clients = Number(values.clients);
  const customers = Number(values.customers);
  const faults: FaultConfig | undefined = values['no-faults']
    ? undefined
    : values.faults
      ? (JSON.parse(values.faults) as FaultConfig)
      : { ...DEFAULT_FAULTS, seed: Number(values.seed) };
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-load-'));
  print(
    `Warden load test: ${clients} clients, ≤${values.requests} requests, ≤${values.duration} s, faults ${faults ? 'on' : 'off'}`,
  );

  // Everything the handlers print from here on is captured for the leak scan (and kept off the terminal).
  const capture = captureLogs({ passThrough: false });
  let twin: Twin | undefined;
  let exitCode = 0;
  try {
    // DynamoDB in its own thread: the concurrent path (the tests cover the default, inline).
    twin = await startLocalTwin({ port: 0, dataDir, ephemeral: true, customers, faults, dynamo: 'thread' });
    const tokens = await fetchLoadTokens(twin.url);
    const forbidden = await demoSecrets(twin.db);
    const report = await runLoad(twin.url, tokens, {
      clients,
      maxRequests: Number(values.requests),
      durationMs: Number(values.duration) * 1000,
      customers,
      seed: Number(values.seed),
      forbidden,
      onPhase: (p) =>
        print(`  ${p.concurrency} client(s): ${p.requests} requests in ${(p.elapsedMs / 1000).toFixed(1)} s`),
    });
    print('settling (killed invocations, workflows) and checking invariants…');
    await settle(twin);
    const results = await checkTwinInvariants(
      twin,
      capture.lines,
      report.tokensUsed,
      report.answeredExplains,
    );
    capture.restore();
    print('');
    print(formatLoadReport(report, twin.faults));
    print('');
    print('Invariants:');
    print(formatInvariants(results.filter((r) => r.id < 6)));
    const extra = report.unexpected;
    print(
      `${extra.length === 0 ? 'PASS' : 'FAIL'}  (6) answers: no bad token, bad input or denied write served, no approval-required write run at once, no raw PII to a masked caller: ${extra.length} violation(s)`,
    );
    for (const v of extra.slice(0, 5)) print(`        - ${v}`);
    print(formatInvariants(results.filter((r) => r.id > 6)));
    print(
      `Statements the database ran: ${twin.statementLog.length}; log lines scanned: ${capture.lines.length}`,
    );
    const violations = results.reduce((n, r) => n + r.violations.length, 0) + extra.length;
    print(`Invariant violations: ${violations}`);
    if (violations > 0) exitCode = 1;
  } catch (error) {
    capture.restore();
    console.error('load test failed to run:', error);
    exitCode = 2;
  } finally {
    capture.restore();
    await twin?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
