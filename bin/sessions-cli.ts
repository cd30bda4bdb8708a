/**
 * `npx warden sessions list|show|replay|verify` (auditors, through the gateway's API) and
 * `npx warden audit query "<sql>"` (DuckDB over the local twin's audit exports, the same SQL and
 * schema as Athena over the audit lake).
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, UsageError, call, type CliContext } from './cli-client.js';
import { context, examples, globals, positiveIntOption, wantsJson } from './cli-common.js';
import { str, textTable } from './cli-format.js';

export { textTable } from './cli-format.js';

type Json = Record<string, any>;

export interface SessionsOptions {
  readonly principal?: string;
  readonly target?: string;
  readonly outcome?: string;
  readonly from?: string;
  readonly to?: string;
  readonly limit?: string | number;
}

function fail(status: number, body: unknown): never {
  const message =
    typeof body === 'object' && body !== null && 'error' in body
      ? String((body as Json).error?.message ?? JSON.stringify(body))
      : JSON.stringify(body);
  throw new CliError(`${status}: ${message}`);
}

async function get(ctx: CliContext, path: string): Promise<Json> {
  const res = await call(ctx, 'GET', path);
  if (res.status !== 200) fail(res.status, res.body);
  return res.body as Json;
}

const LABEL: Record<string, string> = {
  request_received: 'request received',
  decided: 'decided',
  approval_requested: 'approval requested',
  approval_decided: 'approval decided',
  execution_started: 'execution started',
  execution_finished: 'execution finished',
  result: 'result (masked)',
  error: 'error',
  grant_created: 'grant created',
  grant_revoked: 'grant revoked',
  request_refused: 'request refused',
  explained: 'explained (nothing run)',
};

function offset(ms: number): string {
  if (ms < 1000) return `+${ms}ms`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(1)}s`;
  return `+${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

function eventLines(e: Json): string[] {
  const d: Json = e.detail && typeof e.detail === 'object' ? e.detail : {};
  switch (e.type) {
    case 'request_received': {
      const out = String(e.statement ?? '')
        .split('\n')
        .map((l) => `  ${l}`);
      const c: Json = d.classification ?? {};
      if (c.class) out.push(`classified ${c.class}${c.reasons?.length ? ` (${c.reasons.join('; ')})` : ''}`);
      if (d.justification) out.push(`justification: ${str(d.justification)}`);
      return out;
    }
    case 'decided':
      return [
        `${str(e.outcome).toUpperCase()} ${str(e.action)} · ${
          e.determiningPolicies?.length
            ? `policies ${e.determiningPolicies.join(', ')}`
            : 'no policy permits it'
        } (policy set ${str(d.policyVersion)})`,
      ];
    case 'approval_requested':
      return [
        `waiting for ${str(d.requiredApprovals ?? 1)} approval(s)${
          d.approverGroups?.length ? ` from ${d.approverGroups.join(', ')}` : ''
        }${d.expiresAt ? ` until ${d.expiresAt}` : ''}`,
      ];
    case 'approval_decided':
      return [
        `${str(e.approver)}: ${str(e.outcome)}${d.requiredApprovals ? ` (${d.approvals}/${d.requiredApprovals})` : ''}`,
      ];
    case 'execution_finished':
      return [`${str(e.rowCount ?? 0)} row(s)${e.unmasked ? ' · UNMASKED' : ''}`];
    case 'result': {
      const columns: string[] = Array.isArray(d.columns)
        ? d.columns.map((c: Json) => String(c.name ?? c))
        : [];
      const rows: Json[] = Array.isArray(d.rows) ? d.rows : [];
      const out = columns.length ? textTable(columns, rows) : [];
      if (d.truncated) out.push('… more rows not kept in the trail');
      const masked = Object.entries(d.masking ?? {});
      if (masked.length) out.push(`masked: ${masked.map(([k, n]) => `${k}×${str(n)}`).join(', ')}`);
      return out;
    }
    case 'error':
      return [`${str(d.code)}: ${str(d.message)}`];
    case 'request_refused':
      return [...(e.statement ? [`  ${e.statement}`] : []), `${str(d.code)}: ${str(d.message)}`];
    case 'explained':
      return [...(e.statement ? [`  ${e.statement}`] : []), `${str(e.action)} would be ${str(e.outcome)}`];
    case 'grant_created':
    case 'grant_revoked':
      return [
        `${str(e.action)} on ${str(e.target)}${d.grantee ? ` for ${d.grantee}` : ''}${d.expiresAt ? ` until ${d.expiresAt}` : ''}`,
      ];
    default:
      return e.statement ? [`  ${e.statement}`] : [];
  }
}

/** The session as it happened, in order, with times and offsets from its first event. */
export function formatReplay(detail: { session: Json; events: Json[] }, verification?: Json): string {
  const { session, events } = detail;
  const start = Date.parse(events[0]?.at ?? session.startedAt);
  const out: string[] = [
    `Session ${session.sessionId}`,
    `  who: ${(session.principals ?? []).join(', ') || '—'}   targets: ${(session.targets ?? []).join(', ') || '—'}`,
    `  from ${session.startedAt} to ${session.lastAt} · ${events.length} events`,
  ];
  if (verification) {
    out.push(
      verification.ok
        ? `  hash chain: intact (${verification.events} events)`
        : `  hash chain: BROKEN — ${(verification.problems ?? []).map((p: Json) => p.message).join('; ')}`,
    );
  }
  out.push('');
  const pad = ' '.repeat(36);
  for (const e of events) {
    const at = Date.parse(e.at);
    const time = Number.isNaN(at) ? str(e.at) : new Date(at).toISOString().slice(11, 23);
    const head = `${String(e.seq).padStart(3)}  ${time}  ${offset(Number.isNaN(at) ? 0 : at - start).padEnd(9)}`;
    const who = `${str(e.principalName)}${e.requestId ? ` ${e.requestId}` : ''}${
      e.durationMs !== undefined ? ` ${e.durationMs}ms` : ''
    }`;
    out.push(`${head}  ${(LABEL[e.type] ?? e.type).padEnd(19)} ${who}`);
    for (const l of eventLines(e)) out.push(`${pad}${l}`);
  }
  return out.join('\n');
}

export function formatVerification(v: Json): string {
  if (v.ok) return `session ${v.sessionId}: hash chain intact (${v.events} events, last seq ${v.lastSeq})`;
  return [
    `session ${v.sessionId}: hash chain BROKEN (${v.events} events present, last seq ${v.lastSeq})`,
    ...(v.problems ?? []).map(
      (p: Json) => `  seq ${p.seq}${p.toSeq ? `–${p.toSeq}` : ''} ${p.kind}: ${p.message}`,
    ),
  ].join('\n');
}

function listQuery(o: SessionsOptions): string {
  const q = new URLSearchParams();
  for (const k of ['principal', 'target', 'outcome', 'from', 'to', 'limit'] as const) {
    const v = o[k];
    if ((typeof v === 'string' && v) || typeof v === 'number') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Returns the exit code. */
export async function sessionsCommand(
  ctx: CliContext,
  args: readonly string[],
  options: SessionsOptions,
  write: (text: string) => void = (t) => console.log(t),
): Promise<number> {
  const [sub, id] = args;
  const enc = (s: string) => encodeURIComponent(s);
  switch (sub) {
    case 'list': {
      const body = await get(ctx, `/v1/sessions${listQuery(options)}`);
      const rows = (body.sessions as Json[]).map((s) => ({
        session: s.sessionId,
        started: s.startedAt,
        events: s.events,
        who: (s.principals ?? []).join(','),
        targets: (s.targets ?? []).join(','),
        outcomes: [...(s.outcomes ?? []), ...(s.statuses ?? [])].join(','),
      }));
      write(
        rows.length
          ? textTable(['session', 'started', 'events', 'who', 'targets', 'outcomes'], rows, 40).join('\n')
          : `no sessions started between ${body.from} and ${body.to}`,
      );
      return 0;
    }
    case 'show':
      if (!id) throw new Error('usage: warden sessions show <id>');
      write(JSON.stringify(await get(ctx, `/v1/sessions/${enc(id)}`), null, 2));
      return 0;
    case 'replay': {
      if (!id) throw new Error('usage: warden sessions replay <id>');
      const [detail, verification] = await Promise.all([
        get(ctx, `/v1/sessions/${enc(id)}`),
        get(ctx, `/v1/sessions/${enc(id)}/verify`),
      ]);
      write(formatReplay(detail as { session: Json; events: Json[] }, verification));
      return 0;
    }
    case 'verify': {
      if (!id) throw new Error('usage: warden sessions verify <id>');
      const v = await get(ctx, `/v1/sessions/${enc(id)}/verify`);
      write(formatVerification(v));
      return v.ok ? 0 : 1;
    }
    default:
      throw new UsageError('usage: warden sessions list|show <id>|replay <id>|verify <id>');
  }
}

/** The local twin's lake: `--lake`, else `<WARDEN_DATA_DIR or .warden>/audit-lake`. */
export function defaultLakeDir(flag?: string): string {
  return resolve(flag ?? join(process.env.WARDEN_DATA_DIR ?? '.warden', 'audit-lake'));
}

/**
 * `audit queries` lists the named queries; `audit query <name|sql> [--param v]…` runs one (a named
 * query by its name, or any SQL over `audit_export`). Returns the exit code.
 */
export async function auditCommand(
  args: readonly string[],
  options: { lake?: string; params?: readonly string[]; json?: boolean },
  write: (text: string) => void = (t) => console.log(t),
): Promise<number> {
  const [sub, text] = args;
  // Loaded here, not at start-up: DuckDB is only needed by these commands.
  const { auditQueries, EXPORT_DATE_PARAMETERS } = await import('../lib/audit-queries.js');
  if (sub === 'queries') {
    for (const q of auditQueries()) {
      write(`${q.name}${q.parameters.length ? ` (${q.parameters.join(', ')})` : ''}\n  ${q.description}`);
    }
    return 0;
  }
  if (sub !== 'query' || !text)
    throw new UsageError('usage: warden audit query "<sql>" | <named query>  · warden audit queries');
  const { exportDataFiles, openAuditLake } = await import('../lib/local/audit-export.js');
  const lake = defaultLakeDir(options.lake);
  const files = exportDataFiles(lake);
  if (files.length === 0) {
    throw new CliError(
      `no audit export under ${lake}: start the local twin (npm start); it exports the trail every 30 s`,
    );
  }
  const named = auditQueries().find((q) => q.name === text);
  const sql = named?.sql ?? text;
  let params = options.params ?? [];
  // A named query given only its own parameters reads every export date of the local lake.
  if (named && params.length === named.parameters.length - EXPORT_DATE_PARAMETERS.length)
    params = ['0000-01-01', '9999-12-31', ...params];
  const db = await openAuditLake(files);
  try {
    const result = await db.query(sql, params);
    if (options.json) write(result.rows.map((r) => JSON.stringify(r)).join('\n'));
    else if (result.rows.length === 0) write(`(no rows) columns: ${result.columns.join(', ')}`);
    else write([...textTable(result.columns, result.rows, 60), `${result.rows.length} row(s)`].join('\n'));
  } finally {
    db.close();
  }
  return 0;
}

const ISO = (flag: string) => (value: string) => {
  if (Number.isNaN(Date.parse(value)))
    throw new UsageError(`${flag}: not an ISO date/time: ${JSON.stringify(value)}`);
  return value;
};

export function register(program: Command): void {
  const sessions = program
    .command('sessions')
    .description('auditors: sessions and their events (list, show, replay, verify)');
  examples(
    sessions
      .command('list')
      .description('sessions in a time window (default: the last 24 h)')
      .option('--principal <p>', 'only this principal, e.g. User::alice')
      .option('--target <t>', 'only this target')
      .option('--outcome <o>', 'only sessions with this outcome or status')
      .option('--from <iso>', 'window start', ISO('--from'))
      .option('--to <iso>', 'window end', ISO('--to'))
      .option('--limit <n>', 'at most n sessions', positiveIntOption('--limit'))
      .action(async (o: SessionsOptions, cmd: Command) => {
        const ctx = await context(cmd);
        if (wantsJson(cmd)) {
          const res = await call(ctx, 'GET', `/v1/sessions${listQuery(o)}`);
          if (res.status !== 200) fail(res.status, res.body);
          console.log(JSON.stringify(res.body, null, 2));
          return;
        }
        process.exitCode = await sessionsCommand(ctx, ['list'], o);
      }),
    [
      'npx warden sessions list --as dave',
      'npx warden sessions list --as dave --principal User::carol --from 2026-01-01',
    ],
  );
  examples(
    sessions
      .command('show')
      .description("a session's events as JSON")
      .argument('<id>', 'the session id')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        process.exitCode = await sessionsCommand(await context(cmd), ['show', id], {});
      }),
    ['npx warden sessions show s_0123… --as dave | jq .events'],
  );
  examples(
    sessions
      .command('replay')
      .description('the session as it happened: times, decisions, masked results (text, also when piped)')
      .argument('<id>', 'the session id')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const ctx = await context(cmd);
        if (globals(cmd).json) return void (await sessionsCommand(ctx, ['show', id], {}));
        process.exitCode = await sessionsCommand(ctx, ['replay', id], {});
      }),
    ['npx warden sessions replay s_0123… --as dave'],
  );
  examples(
    sessions
      .command('verify')
      .description("check a session's hash chain (exit 1 when broken)")
      .argument('<id>', 'the session id')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const ctx = await context(cmd);
        if (globals(cmd).json) {
          const v = await get(ctx, `/v1/sessions/${encodeURIComponent(id)}/verify`);
          console.log(JSON.stringify(v, null, 2));
          process.exitCode = v.ok ? 0 : 1;
          return;
        }
        process.exitCode = await sessionsCommand(ctx, ['verify', id], {});
      }),
    ['npx warden sessions verify s_0123… --as dave'],
  );

  const audit = program
    .command('audit')
    .description("the audit lake's named queries, run locally with DuckDB");
  audit
    .command('queries')
    .description('the named audit-lake queries')
    .action(async () => {
      process.exitCode = await auditCommand(['queries'], {});
    });
  examples(
    audit
      .command('query')
      .description("run SQL or a named query over the local twin's audit export")
      .argument('<sql-or-name>', 'SQL over audit_export, or a name from "audit queries"')
      .option('--param <value>', 'a positional parameter (repeatable)', (v: string, all: string[] = []) => [
        ...all,
        v,
      ])
      .option('--lake <dir>', 'the export directory (default: <WARDEN_DATA_DIR>/audit-lake)')
      .action(async (text: string, o: { param?: string[]; lake?: string }, cmd: Command) => {
        process.exitCode = await auditCommand(['query', text], {
          lake: o.lake,
          params: o.param,
          json: globals(cmd).json,
        });
      }),
    [
      'npx warden audit query who-ran-what',
      'npx warden audit query "SELECT count(*) FROM audit_export" --json',
    ],
  );
}
