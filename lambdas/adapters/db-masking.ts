/**
 * Database-enforced masking over the RDS Data API: `warden db setup --apply`, `warden db check`,
 * and the gateway's check before it first serves a masked principal on a target
 * (docs/masking.md). The SQL itself comes from lambdas/core/masking/db-profiles.ts.
 */
import {
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
} from '@aws-sdk/client-rds-data';
import type { SqlTargetConfig, WardenConfig } from '../core/config.js';
import { wholeSecondsFromEnv } from '../core/env-seconds.js';
import { ExecutionError } from '../core/errors.js';
import {
  CHECK_MARK,
  catalogueSql,
  checkProbes,
  exemptionProblems,
  evaluateProbe,
  generateMaskingSql,
  type CatalogueColumn,
  type ProbeOutcome,
  type WardenUser,
} from '../core/masking/db-profiles.js';
import type { DbMaskingGuard } from '../core/requests.js';
import { fieldToJs } from './rds-data.js';

const SQLSTATE = /SQLState: ([0-9A-Z]{5})/;

export interface DbCheckReport {
  readonly target: string;
  readonly ok: boolean;
  /** What failed, one line each. */
  readonly problems: readonly string[];
  /** What was proved, one line each. */
  readonly passed: readonly string[];
  /** Some probe could not run (throttled, 5xx, timeout): the check says nothing either way. */
  readonly unavailable?: boolean;
}

/** An SDK error that says the call did not get an answer from the database (retry later). */
function isTransient(err: unknown): boolean {
  const e = err as {
    name?: string;
    code?: string;
    transient?: boolean;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e?.$metadata?.httpStatusCode;
  return (
    e?.transient === true ||
    (status !== undefined && (status >= 500 || status === 429)) ||
    /Throttl|TooManyRequests|ServiceUnavailable|InternalServerError|Timeout/.test(e?.name ?? '') ||
    ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ESOCKETTIMEDOUT'].includes(e?.code ?? '')
  );
}

function secretOf(target: SqlTargetConfig, user: WardenUser): string | undefined {
  return target.secrets[user];
}

async function run(
  client: RDSDataClient,
  target: SqlTargetConfig,
  secretArn: string,
  sql: string,
  transactionId?: string,
): Promise<ProbeOutcome> {
  try {
    const out = await client.send(
      new ExecuteStatementCommand({
        resourceArn: target.resourceArn,
        secretArn,
        database: target.database,
        sql,
        ...(transactionId ? { transactionId } : {}),
      }),
    );
    const rows = (out.records ?? []).map((r) =>
      r.map((f) => {
        const v = fieldToJs(f);
        return v === null ? null : String(v);
      }),
    );
    return { ok: true, rows };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const sqlState = SQLSTATE.exec(message)?.[1];
    return {
      ok: false,
      message,
      ...(sqlState ? { sqlState } : {}),
      ...(!sqlState && isTransient(err) ? { transient: true } : {}),
    };
  }
}

/** The target's columns, read with `secretArn` (any user may read pg_catalog). */
export async function readCatalogue(
  client: RDSDataClient,
  target: SqlTargetConfig,
  secretArn: string,
): Promise<CatalogueColumn[]> {
  const out = await run(client, target, secretArn, CHECK_MARK + catalogueSql(target));
  if (!out.ok) {
    throw Object.assign(new Error(`reading the catalogue failed: ${out.message}`), {
      transient: out.transient === true,
    });
  }
  return out.rows.map(([schema, table, column, type, kind, position]) => ({
    schema: schema ?? '',
    table: table ?? '',
    column: column ?? '',
    type: type ?? '',
    kind: kind ?? '',
    position: Number(position),
  }));
}

/** The setup SQL for a target, from its configuration and its catalogue. */
export async function setupStatements(
  client: RDSDataClient,
  target: SqlTargetConfig,
  secretArn: string,
): Promise<string[]> {
  return generateMaskingSql(target, await readCatalogue(client, target, secretArn));
}

/** Applies the setup in one Data API transaction with the administrator's secret. */
export async function applySetup(
  client: RDSDataClient,
  target: SqlTargetConfig,
  adminSecretArn: string,
): Promise<number> {
  const statements = await setupStatements(client, target, adminSecretArn);
  const base = { resourceArn: target.resourceArn, secretArn: adminSecretArn, database: target.database };
  const { transactionId } = await client.send(new BeginTransactionCommand(base));
  try {
    for (const [i, sql] of statements.entries()) {
      const out = await run(client, target, adminSecretArn, sql, transactionId);
      if (!out.ok)
        throw new Error(`statement ${i + 1} of ${statements.length} failed: ${out.message}\n${sql}`);
    }
    await client.send(new CommitTransactionCommand({ ...base, transactionId }));
  } catch (err) {
    await client.send(new RollbackTransactionCommand({ ...base, transactionId })).catch(() => undefined);
    throw err;
  }
  return statements.length;
}

/**
 * `warden db check`: every Warden user's settings, and each masked user refused on every raw
 * sensitive column. The catalogue is read with `catalogueSecret` (default: the unmasked reader).
 */
export async function runDbCheck(
  client: RDSDataClient,
  name: string,
  target: SqlTargetConfig,
  options: {
    catalogueSecret?: string;
    /**
     * The users whose probes run: a function checks the users it runs statements as (the API
     * function holds only the readers' secrets). @default every Warden user
     */
    users?: readonly WardenUser[];
  } = {},
): Promise<DbCheckReport> {
  const problems: string[] = [];
  const passed: string[] = [];
  const checked = (user: WardenUser) => !options.users || options.users.includes(user);
  for (const user of ['maskedRead', 'maskedWrite'] as const) {
    if (checked(user) && !secretOf(target, user)) problems.push(`secrets.${user} is not configured`);
  }
  let columns: CatalogueColumn[];
  try {
    columns = await readCatalogue(client, target, options.catalogueSecret ?? target.secrets.read);
  } catch (err) {
    return {
      target: name,
      ok: false,
      problems: [...problems, String(err)],
      passed,
      ...(isTransient(err) ? { unavailable: true } : {}),
    };
  }
  try {
    problems.push(...exemptionProblems(target, columns));
  } catch (err) {
    problems.push(String(err));
  }
  // The probes are independent statements (no transaction, each as its own user): they run
  // PROBE_CONCURRENCY at a time, a masked principal's first read waits for a few round trips instead
  // of one per probe, and the report keeps the probes' order.
  const probes = checkProbes(target, columns).flatMap((probe) => {
    if (!checked(probe.as)) return [];
    const secret = secretOf(target, probe.as);
    return secret ? [{ probe, secret }] : [];
  });
  const outcomes = await inOrder(probes, PROBE_CONCURRENCY, ({ probe, secret }) =>
    run(client, target, secret, probe.sql),
  );
  let unavailable = false;
  probes.forEach(({ probe }, i) => {
    const outcome = outcomes[i];
    if (!outcome.ok && outcome.transient) unavailable = true;
    const problem = evaluateProbe(probe, outcome);
    if (problem) problems.push(problem);
    else passed.push(probe.what);
  });
  return {
    target: name,
    ok: problems.length === 0,
    problems,
    passed,
    ...(unavailable ? { unavailable } : {}),
  };
}

const PROBE_CONCURRENCY = 8;

/** `work` over `items`, at most `limit` at a time; results in the items' order. */
async function inOrder<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const FAILURE_RETRY_MS = 30_000;

/** How long a pass serves before the check runs again, unless DB_MASKING_RECHECK_SECONDS says otherwise. */
export const DEFAULT_DB_MASKING_RECHECK_SECONDS = 300;

/**
 * DB_MASKING_RECHECK_SECONDS: how old a target's passed database masking check may get before the
 * function runs it again (a whole number of seconds, 1 to 86400; unset: 300). Anything else stops
 * the cold start with its name.
 */
export function dbMaskingRecheckFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  return wholeSecondsFromEnv(env, 'DB_MASKING_RECHECK_SECONDS');
}

/** One target's check as the guard holds it. */
interface CheckEntry {
  /** When the check whose report this is started. */
  readonly at: number;
  readonly report: Promise<DbCheckReport>;
  /** The report once it is in. */
  settled?: DbCheckReport;
  /** A re-check of a pass, running while the pass still serves. */
  recheck?: Promise<void>;
  /** When the last re-check of this pass started. */
  recheckAt?: number;
}

/**
 * The gateway's guard: the check runs when a target first serves a masked principal (the API
 * function starts it at init), and again once a pass is `recheckSeconds` old, so a privilege granted
 * by hand afterwards (SELECT on a base table to a masked user, say) is found by the instance that is
 * up, not only by the next cold start:
 *
 * - a pass younger than `recheckSeconds` serves;
 * - an older one still serves while a re-check runs beside the requests (one at a time); a re-check
 *   that passes renews it, one that fails replaces it (masked principals refused from then on),
 *   one that could not run (throttled, 5xx, timeout) leaves it and is tried again 30 s later;
 * - a pass twice `recheckSeconds` old (its re-checks could not run all along) no longer serves: the
 *   next masked request waits for a check and is refused 503 if that cannot run either.
 *
 * A failure is kept for 30 s so a repaired target is picked up. While it fails, masked principals
 * are refused (nothing runs); unmasked principals are unaffected.
 */
export function createDbMaskingGuard(options: {
  readonly config: WardenConfig;
  readonly client?: RDSDataClient;
  readonly log?: (entry: Record<string, unknown>) => void;
  readonly now?: () => number;
  /** The users this function runs statements as (see runDbCheck). @default every Warden user */
  readonly users?: readonly WardenUser[];
  /** How long a pass serves before the check runs again. @default 300 */
  readonly recheckSeconds?: number;
  /** The check itself. @default runDbCheck with this guard's client and users */
  readonly check?: (name: string, target: SqlTargetConfig) => Promise<DbCheckReport>;
}): DbMaskingGuard {
  const client = options.client ?? new RDSDataClient({ maxAttempts: 1 });
  const now = options.now ?? Date.now;
  const recheckMs = (options.recheckSeconds ?? DEFAULT_DB_MASKING_RECHECK_SECONDS) * 1000;
  const check =
    options.check ??
    ((name: string, target: SqlTargetConfig) =>
      runDbCheck(client, name, target, options.users ? { users: options.users } : {}));
  const results = new Map<string, CheckEntry>();

  const start = (name: string, target: SqlTargetConfig, recheck: boolean): CheckEntry => {
    const report = check(name, target).catch((err: unknown): DbCheckReport => ({
      target: name,
      ok: false,
      problems: [String(err)],
      passed: [],
      ...(isTransient(err) ? { unavailable: true } : {}),
    }));
    const entry: CheckEntry = { at: now(), report };
    void report.then((r) => {
      entry.settled = r;
      options.log?.({
        level: r.ok ? 'info' : r.unavailable ? 'warn' : 'error',
        msg: r.ok
          ? 'database masking check passed'
          : r.unavailable
            ? 'database masking check could not run'
            : 'database masking check failed',
        target: name,
        ...(recheck ? { recheck: true } : {}),
        ...(r.ok ? { passed: r.passed.length } : { problems: r.problems }),
      });
    });
    return entry;
  };

  /** Runs the check again beside the requests a pass still serves; what it finds replaces the pass. */
  const recheckPass = (name: string, target: SqlTargetConfig, pass: CheckEntry): void => {
    if (pass.recheck || (pass.recheckAt !== undefined && now() - pass.recheckAt < FAILURE_RETRY_MS)) return;
    pass.recheckAt = now();
    const fresh = start(name, target, true);
    pass.recheck = fresh.report.then((r) => {
      pass.recheck = undefined;
      // A re-check that could not run teaches nothing: the pass stays (until it is too old).
      if (results.get(name) === pass && !(r.unavailable && !r.ok)) results.set(name, fresh);
    });
  };

  return {
    async ensure(name: string): Promise<void> {
      const target = options.config.targets[name];
      if (!target || target.kind !== 'sql') return;
      let entry = results.get(name);
      if (entry?.settled?.ok) {
        const age = now() - entry.at;
        if (age < recheckMs) return;
        if (age < 2 * recheckMs) {
          recheckPass(name, target, entry);
          return;
        }
        // Too old to serve: this request waits for a check of its own.
        entry = undefined;
      }
      if (!entry || (entry.at + FAILURE_RETRY_MS < now() && !(await entry.report).ok)) {
        entry = start(name, target, false);
        results.set(name, entry);
      }
      const report = await entry.report;
      if (!report.ok && report.unavailable) {
        // Nothing was learnt (a probe was throttled, timed out or met a 5xx): not kept, so the next
        // masked request checks again; this one is refused as unavailable, and nothing runs.
        if (results.get(name) === entry) results.delete(name);
        throw new ExecutionError(
          503,
          'masking_check_unavailable',
          `Target "${name}"'s database masking check could not run just now, so this request, which ` +
            'must be masked, was refused and nothing was run. Try again.',
        );
      }
      if (!report.ok) {
        throw new ExecutionError(
          403,
          'masking_not_enforced',
          `Target "${name}" has not passed its database masking check, so requests that must be masked ` +
            'are refused and nothing was run. An administrator must run `npx warden db setup ' +
            `${name} --apply\` and \`npx warden db check ${name}\` (docs/masking.md).`,
        );
      }
    },
  };
}
