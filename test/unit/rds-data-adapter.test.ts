import {
  BadRequestException,
  DatabaseErrorException,
  DatabaseResumingException,
  ForbiddenException,
  InternalServerErrorException,
  SecretsErrorException,
  StatementTimeoutException,
} from '@aws-sdk/client-rds-data';
import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../lambdas/core/errors.js';
import {
  secretFor,
  toDataApiParameter,
  toExecutionError,
  toSqlResult,
} from '../../lambdas/adapters/rds-data.js';

const meta = { $metadata: {} };

describe('rds-data adapter: parameters', () => {
  it('maps each core parameter value to the matching Data API field and keeps the type hint', () => {
    expect(toDataApiParameter({ name: 's', value: 'x' })).toEqual({ name: 's', value: { stringValue: 'x' } });
    expect(toDataApiParameter({ name: 'i', value: 42 })).toEqual({ name: 'i', value: { longValue: 42 } });
    expect(toDataApiParameter({ name: 'f', value: 4.5 })).toEqual({ name: 'f', value: { doubleValue: 4.5 } });
    expect(toDataApiParameter({ name: 'b', value: false })).toEqual({
      name: 'b',
      value: { booleanValue: false },
    });
    expect(toDataApiParameter({ name: 'n', value: null })).toEqual({ name: 'n', value: { isNull: true } });
    expect(toDataApiParameter({ name: 'd', value: '2024-01-01', typeHint: 'DATE' })).toEqual({
      name: 'd',
      value: { stringValue: '2024-01-01' },
      typeHint: 'DATE',
    });
  });

  it('sends integers beyond 2^53 as doubles rather than corrupting them as longs', () => {
    expect(toDataApiParameter({ name: 'big', value: 2 ** 60 }).value).toEqual({ doubleValue: 2 ** 60 });
  });

  it('refuses NaN and infinities', () => {
    expect(() => toDataApiParameter({ name: 'x', value: Number.NaN })).toThrow(BadRequestError);
  });
});

describe('rds-data adapter: results', () => {
  it('turns typed records into row objects, keeping arrays and encoding blobs as base64', () => {
    const result = toSqlResult(
      {
        ...meta,
        columnMetadata: [
          { name: 'id', label: 'id', typeName: 'int4', tableName: 'orders', schemaName: '' },
          { name: 'tags', label: 'tags', typeName: '_text' },
          { name: 'raw', label: 'raw', typeName: 'bytea' },
          { name: 'gone', label: 'gone', typeName: 'text' },
        ],
        records: [
          [
            { longValue: 7 },
            { arrayValue: { stringValues: ['a', 'b'] } },
            { blobValue: new Uint8Array([1, 2]) },
            { isNull: true },
          ],
        ],
        numberOfRecordsUpdated: 0,
      },
      100,
    );
    expect(result.columns).toEqual([
      { name: 'id', type: 'int4', table: 'orders' },
      { name: 'tags', type: '_text' },
      { name: 'raw', type: 'bytea' },
      { name: 'gone', type: 'text' },
    ]);
    expect(result.rows).toEqual([{ id: 7, tags: ['a', 'b'], raw: 'AQI=', gone: null }]);
    expect(result).toMatchObject({ truncated: false, rowCount: 1 });
  });

  it('reports rows updated for a write without a result set', () => {
    expect(toSqlResult({ ...meta, numberOfRecordsUpdated: 12, generatedFields: [] }, 10)).toEqual({
      columns: [],
      rows: [],
      truncated: false,
      rowCount: 12,
    });
  });
});

describe('rds-data adapter: errors', () => {
  const opts = (message: string) => ({ message, $metadata: {} });

  it('maps a PostgreSQL error to 400 sql_error with its message', () => {
    const msg = 'ERROR: syntax error at or near "selec"\n  Position: 1; SQLState: 42601';
    expect(toExecutionError(new BadRequestException(opts(msg)), 'read')).toMatchObject({
      statusCode: 400,
      code: 'sql_error',
      message: msg,
    });
    expect(toExecutionError(new DatabaseErrorException(opts(msg)), 'read')).toMatchObject({
      code: 'sql_error',
    });
  });

  it('maps insufficient privilege (42501) to 403 database_permission_denied', () => {
    const denied = 'ERROR: permission denied for table customers; SQLState: 42501';
    expect(toExecutionError(new BadRequestException(opts(denied)), 'read')).toMatchObject({
      statusCode: 403,
      code: 'database_permission_denied',
    });
  });

  it('maps what is wrong with Warden’s own access (IAM, secrets) to 502 target_misconfigured, ARNs kept out of the message', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders/write-AbCdEf';
    const iam = `User: arn:aws:sts::111122223333:assumed-role/warden-api/fn is not authorized to perform: secretsmanager:GetSecretValue on resource: ${arn}`;
    for (const err of [
      new ForbiddenException(opts(iam)),
      new SecretsErrorException(opts(`Secrets Manager can't find the specified secret ${arn}`)),
      Object.assign(new Error(iam), { name: 'AccessDeniedException' }),
    ]) {
      const mapped = toExecutionError(err, 'read');
      expect(mapped).toMatchObject({ statusCode: 502, code: 'target_misconfigured' });
      expect(mapped.message).not.toMatch(/arn:|111122223333|secret:/);
      // The operator still finds the service's words in the cause (logged, masked).
      expect(String((mapped.cause as Error).message)).toContain('arn:');
    }
  });

  it("maps the database's statement timeout (57014) to 422 statement_time_limit", () => {
    const cancelled = 'ERROR: canceling statement due to statement timeout; SQLState: 57014';
    expect(toExecutionError(new DatabaseErrorException(opts(cancelled)), 'read')).toMatchObject({
      statusCode: 422,
      code: 'statement_time_limit',
    });
    expect(toExecutionError(new BadRequestException(opts(cancelled)), 'write').message).toMatch(
      /rolled back/,
    );
  });

  it('maps the 1 MiB response limit to 422 result_too_large, warning that a write may have run', () => {
    const tooLarge = new BadRequestException(
      opts('Database returned more than the allowed response size limit'),
    );
    expect(toExecutionError(tooLarge, 'read')).toMatchObject({ statusCode: 422, code: 'result_too_large' });
    expect(toExecutionError(tooLarge, 'write').message).toMatch(/may have been applied/);
  });

  it('maps timeouts, throttling and server faults to 5xx and never hides that a write may have run', () => {
    const timeout = toExecutionError(
      new StatementTimeoutException({ ...opts('slow'), dbConnectionId: 1 }),
      'write',
    );
    expect(timeout).toMatchObject({ statusCode: 504, code: 'statement_timeout' });
    expect(timeout.message).toMatch(/may or may not have been applied/);

    const throttled = Object.assign(new Error('Rate exceeded'), {
      name: 'ThrottlingException',
      $fault: 'client',
    });
    expect(toExecutionError(throttled, 'read')).toMatchObject({
      statusCode: 503,
      code: 'database_unavailable',
    });

    expect(
      toExecutionError(new InternalServerErrorException({ $metadata: {}, message: 'boom' }), 'read'),
    ).toMatchObject({
      statusCode: 503,
    });
    expect(toExecutionError(new DatabaseResumingException(opts('resuming')), 'read')).toMatchObject({
      statusCode: 503,
      code: 'database_resuming',
    });
    expect(toExecutionError(new SecretsErrorException(opts('bad secret')), 'read')).toMatchObject({
      statusCode: 502,
      code: 'target_misconfigured',
    });
    expect(toExecutionError(new Error('socket hang up'), 'read').statusCode).toBeGreaterThanOrEqual(500);
  });
});

describe('rds-data adapter: the secret of a profile', () => {
  const target = {
    resourceArn: 'arn:aws:rds:us-east-1:1:cluster:c',
    database: 'd',
    secrets: { read: 'ro', write: 'rw', maskedRead: 'mro', maskedWrite: 'mrw' },
  };

  it('runs masked statements as the masked users and unmasked ones as the raw users', () => {
    expect(secretFor(target, 'read', 'masked')).toBe('mro');
    expect(secretFor(target, 'write', 'masked')).toBe('mrw');
    expect(secretFor(target, 'read', 'unmasked')).toBe('ro');
    expect(secretFor(target, 'write')).toBe('rw');
  });

  it('never falls back to an unmasked user when the masked profile has no secret', () => {
    const bare = { ...target, secrets: { read: 'ro', write: 'rw' } };
    expect(() => secretFor(bare, 'read', 'masked')).toThrow(/no masked database profile/);
    expect(() => secretFor(bare, 'write', 'masked')).toThrow(
      expect.objectContaining({ statusCode: 403, code: 'masking_not_enforced' }),
    );
  });
});
