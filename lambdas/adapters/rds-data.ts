/**
 * SqlExecutor over the RDS Data API. The same code runs against Aurora and against the local
 * twin (lib/local/data-api.ts); only the client's endpoint differs.
 *
 * Decisions worth knowing:
 * - The executor runs the SQL it is given exactly once; it never rewrites or re-runs it. Core hands
 *   it a read already bounded (`SELECT * FROM (<sql>) AS warden_bounded LIMIT maxRows + 1`, see
 *   boundedRead in core/requests.ts). `maxRows` is applied here too, and `truncated` says rows
 *   were dropped.
 * - The Data API refuses results over 1 MiB ("Database returned more than the allowed response
 *   size limit"): a clear 422 `result_too_large`, for a write saying the statement may have been
 *   applied, because the service runs it before it measures the response.
 * - A masked principal's statement runs as the target's masked users (`profile: 'masked'`,
 *   docs/masking.md), never as an unmasked one; the database's statement_timeout (SQLSTATE 57014)
 *   answers 422 `statement_time_limit`.
 * - The default client never retries (maxAttempts 1): after a timeout or a 5xx Warden cannot know
 *   whether the statement ran, and running an approved write twice is worse than failing once.
 *   Those failures are reported as 502/503/504 and never as success.
 */
import {
  ExecuteStatementCommand,
  RDSDataClient,
  type ArrayValue,
  type ColumnMetadata,
  type ExecuteStatementCommandOutput,
  type Field,
  type SqlParameter as DataApiParameter,
} from '@aws-sdk/client-rds-data';
import { BadRequestError, ExecutionError, NotFoundError } from '../core/errors.js';
import type { SqlExecutionInput, SqlExecutor } from '../core/ports.js';
import type { ColumnInfo, SqlParameter, SqlResult } from '../core/types.js';
import { requestPathClient } from './sdk-client.js';

export interface RdsDataTarget {
  readonly resourceArn: string;
  readonly database: string;
  /** Secrets Manager ARNs of the database users: unmasked read/write, and the masked profile's. */
  readonly secrets: {
    readonly read: string;
    readonly write: string;
    readonly maskedRead?: string;
    readonly maskedWrite?: string;
  };
}

/**
 * The secret a statement runs with. A masked statement never falls back to an unmasked user: a
 * target without the masked profile's secrets refuses it.
 */
export function secretFor(
  target: RdsDataTarget,
  level: SqlExecutionInput['level'],
  profile: SqlExecutionInput['profile'] = 'unmasked',
): string {
  if (profile === 'unmasked') return level === 'write' ? target.secrets.write : target.secrets.read;
  const secret = level === 'write' ? target.secrets.maskedWrite : target.secrets.maskedRead;
  if (!secret) {
    throw new ExecutionError(
      403,
      'masking_not_enforced',
      `This target has no masked database profile (secrets.${level === 'write' ? 'maskedWrite' : 'maskedRead'}), ` +
        'so statements that must be masked are refused; nothing was run. See docs/masking.md.',
    );
  }
  return secret;
}

export interface RdsDataExecutorOptions {
  /** @default a client created once per Lambda instance, region from the environment */
  readonly client?: RDSDataClient;
  /** Target name → where its statements run. */
  readonly targets: Readonly<Record<string, RdsDataTarget>>;
  /**
   * Reads only: the API function's executor, which never holds a write secret (allowed writes run
   * in the execute function). A write handed to it is refused before any call. @default false
   */
  readonly readOnly?: boolean;
}

// No per-command middleware: each command class's resolved middleware is cached. Shared with the
// database masking guard (runtime.ts), so the connections its check opens at cold start serve reads.
export const defaultRdsDataClient = requestPathClient(
  new RDSDataClient({ maxAttempts: 1, cacheMiddleware: true }),
);
const defaultClient = defaultRdsDataClient;

const RESPONSE_TOO_LARGE = /more than the allowed response size limit/i;
const SQLSTATE = /SQLState: ([0-9A-Z]{5})/;
/** SQLSTATE class 42501 insufficient_privilege; 28xxx invalid authorization. */
const PERMISSION_SQLSTATES = /^(42501|28)/;
/** 57014 query_canceled: the database user's statement_timeout (a role setting) ended it. */
const STATEMENT_TIMEOUT_SQLSTATE = '57014';

export function toDataApiParameter(p: SqlParameter): DataApiParameter {
  const typeHint = p.typeHint as DataApiParameter['typeHint'];
  const base = { name: p.name, ...(typeHint ? { typeHint } : {}) };
  const v = p.value;
  if (v === null) return { ...base, value: { isNull: true } };
  if (typeof v === 'string') return { ...base, value: { stringValue: v } };
  if (typeof v === 'boolean') return { ...base, value: { booleanValue: v } };
  if (typeof v === 'number' && Number.isFinite(v)) {
    return Number.isSafeInteger(v)
      ? { ...base, value: { longValue: v } }
      : { ...base, value: { doubleValue: v } };
  }
  throw new BadRequestError(`parameter ${p.name} has a value the Data API cannot carry`, {
    parameter: p.name,
  });
}

function arrayToJs(a: ArrayValue | null): unknown[] | null {
  if (a === null) return null;
  if (a.arrayValues) return a.arrayValues.map(arrayToJs);
  return a.booleanValues ?? a.longValues ?? a.doubleValues ?? a.stringValues ?? [];
}

export function fieldToJs(f: Field): unknown {
  if (f.isNull) return null;
  if (f.stringValue !== undefined) return f.stringValue;
  if (f.longValue !== undefined) return f.longValue;
  if (f.doubleValue !== undefined) return f.doubleValue;
  if (f.booleanValue !== undefined) return f.booleanValue;
  // Results travel as JSON; base64 keeps binary columns lossless.
  if (f.blobValue !== undefined) return Buffer.from(f.blobValue).toString('base64');
  if (f.arrayValue !== undefined) return arrayToJs(f.arrayValue);
  return null;
}

/** Column names made unique (`id`, `id_2`) so no value is lost when rows become objects. */
function columnsOf(metadata: readonly ColumnMetadata[]): ColumnInfo[] {
  const seen = new Map<string, number>();
  return metadata.map((m, i) => {
    const base = m.label || m.name || `column_${i + 1}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return {
      name: n === 1 ? base : `${base}_${n}`,
      type: m.typeName ?? 'unknown',
      ...(m.tableName ? { table: m.tableName } : {}),
      ...(m.schemaName ? { schema: m.schemaName } : {}),
    };
  });
}

export function toSqlResult(output: ExecuteStatementCommandOutput, maxRows: number): SqlResult {
  const columns = columnsOf(output.columnMetadata ?? []);
  const records = output.records ?? [];
  const kept = records.slice(0, Math.max(0, maxRows));
  const rows = kept.map((record) =>
    Object.fromEntries(record.map((field, i) => [columns[i]?.name ?? `column_${i + 1}`, fieldToJs(field)])),
  );
  const updated = output.numberOfRecordsUpdated ?? 0;
  return {
    columns,
    rows,
    truncated: records.length > kept.length,
    rowCount: updated > 0 ? updated : rows.length,
  };
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

/** Translates what the SDK threw into Warden's errors; never reports success. */
export function toExecutionError(err: unknown, level: SqlExecutionInput['level']): ExecutionError {
  const name = errorName(err);
  const message = err instanceof Error ? err.message : String(err);
  const outcomeUnknown =
    level === 'write' ? ' The statement may or may not have been applied; check before retrying.' : '';
  const fault = (err as { $fault?: string } | undefined)?.$fault;
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

  if (name === 'BadRequestException' || name === 'DatabaseErrorException') {
    if (RESPONSE_TOO_LARGE.test(message)) {
      return new ExecutionError(
        422,
        'result_too_large',
        'The result is larger than the 1 MiB the RDS Data API can return. Select fewer columns or ' +
          'rows (for example with LIMIT) and try again.' +
          (level === 'write' ? ' The statement itself may have been applied.' : ''),
        err,
      );
    }
    const sqlState = SQLSTATE.exec(message)?.[1];
    if (sqlState && PERMISSION_SQLSTATES.test(sqlState)) {
      return new ExecutionError(403, 'database_permission_denied', message, err);
    }
    if (sqlState === STATEMENT_TIMEOUT_SQLSTATE) {
      return new ExecutionError(
        422,
        'statement_time_limit',
        "The statement ran longer than the target's statement time limit (statementTimeoutMs) and " +
          'the database cancelled it; narrow it (fewer rows, an index, a LIMIT) and try again.' +
          (level === 'write' ? ' Nothing it did was kept: a cancelled statement is rolled back.' : ''),
        err,
      );
    }
    return new ExecutionError(400, 'sql_error', message, err);
  }
  switch (name) {
    case 'StatementTimeoutException':
      return new ExecutionError(504, 'statement_timeout', `The statement timed out.${outcomeUnknown}`, err);
    case 'DatabaseResumingException':
      return new ExecutionError(
        503,
        'database_resuming',
        'The database is resuming from a pause; try again in a few seconds.',
        err,
      );
    case 'UnsupportedResultException':
      return new ExecutionError(422, 'unsupported_result', message, err);
    case 'TimeoutError':
    case 'RequestTimeout':
    case 'RequestTimeoutException':
      return new ExecutionError(
        504,
        'database_timeout',
        `The Data API did not answer in time.${outcomeUnknown}`,
        err,
      );
    case 'ThrottlingException':
    case 'TooManyRequestsException':
    case 'ServiceUnavailableError':
    case 'DatabaseUnavailableException':
      return new ExecutionError(
        503,
        'database_unavailable',
        `The database is unavailable.${outcomeUnknown}`,
        err,
      );
    case 'ForbiddenException':
    case 'AccessDeniedException':
    case 'SecretsErrorException':
    case 'InvalidSecretException':
    case 'DatabaseNotFoundException':
    case 'HttpEndpointNotEnabledException':
    case 'InvalidResourceStateException':
      // Warden's own configuration of the target (its IAM role, a secret, the cluster) is wrong;
      // nothing the caller can fix. The service's text names ARNs: it stays in the cause (logged).
      return new ExecutionError(
        502,
        'target_misconfigured',
        `Warden's configuration of this target is wrong (${name}); the details are in Warden's logs`,
        err,
      );
  }
  const code = (err as { code?: string } | undefined)?.code;
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') {
    return new ExecutionError(
      504,
      'database_timeout',
      `The Data API did not answer in time.${outcomeUnknown}`,
      err,
    );
  }
  if (fault === 'server' || (status !== undefined && status >= 500)) {
    return new ExecutionError(503, 'database_unavailable', `The Data API failed.${outcomeUnknown}`, err);
  }
  return new ExecutionError(502, 'database_error', `The Data API call failed.${outcomeUnknown}`, err);
}

export function createRdsDataExecutor(options: RdsDataExecutorOptions): SqlExecutor {
  const client = options.client ?? defaultClient;
  return {
    async execute(input: SqlExecutionInput): Promise<SqlResult> {
      const target = Object.hasOwn(options.targets, input.target) ? options.targets[input.target] : undefined;
      if (!target) throw new NotFoundError(`unknown target ${input.target}`);
      if (options.readOnly && input.level !== 'read') {
        throw new ExecutionError(
          500,
          'target_misconfigured',
          'this function runs reads only; writes run in the execute function',
        );
      }
      const parameters = (input.parameters ?? []).map(toDataApiParameter);
      const secretArn = secretFor(target, input.level, input.profile);
      let output: ExecuteStatementCommandOutput;
      try {
        output = await client.send(
          new ExecuteStatementCommand({
            resourceArn: target.resourceArn,
            secretArn,
            database: target.database,
            sql: input.sql,
            ...(parameters.length > 0 ? { parameters } : {}),
            includeResultMetadata: true,
          }),
        );
      } catch (err) {
        throw toExecutionError(err, input.level);
      }
      return toSqlResult(output, input.maxRows);
    },
  };
}
