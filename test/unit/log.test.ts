/**
 * Log lines go through the detectors before they are printed (lambdas/core/log.ts): an error
 * message, a cause or a stack that quotes a value never puts it raw in CloudWatch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { logJson, maskedLogLine } from '../../lambdas/core/log.js';
import { logJson as middlewareLog } from '../../lambdas/middleware/http.js';
import { errorResult } from '../../lambdas/middleware/http.js';
import { ExecutionError, ServiceUnavailableError } from '../../lambdas/core/errors.js';
import { captureLogs, type LogCapture } from '../../lib/local/invariants.js';

const SSN = '583-05-0905';
const EMAIL = 'jane.roe@example.org';
const CARD = '4111 1111 1111 1111';
const RAW = [SSN, EMAIL, CARD, '4111111111111111'];

let capture: LogCapture | undefined;
afterEach(() => {
  capture?.restore();
  capture = undefined;
});

function printed(): string {
  return capture!.lines.join('\n');
}

describe('log lines', () => {
  it('masks values in the message, nested fields, arrays and keys', () => {
    const line = maskedLogLine({
      level: 'error',
      msg: `invalid input syntax for type integer: "${SSN}"`,
      detail: { input: { Item: { email: { S: EMAIL } } }, cards: [CARD, 4111111111111111] },
      [EMAIL]: 1,
    });
    for (const raw of RAW) expect(line).not.toContain(raw);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed.msg).toBe('invalid input syntax for type integer: "[SSN]"');
    expect(parsed.detail).toEqual({
      input: { Item: { email: { S: '[EMAIL]' } } },
      cards: ['[CARD]', '[CARD]'],
    });
    expect(parsed.level).toBe('error');
    expect(typeof parsed.time).toBe('string');
  });

  it('keeps what a log line is for: level, ids, times, counts', () => {
    const line = JSON.parse(
      maskedLogLine({
        level: 'info',
        msg: 'approval requested',
        requestId: 'r_abcDEF123456789012',
        rows: 42,
      }),
    ) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'info',
      msg: 'approval requested',
      requestId: 'r_abcDEF123456789012',
      rows: 42,
    });
    expect(Number.isNaN(Date.parse(line.time as string))).toBe(false);
  });

  it('prints through logJson (also the middleware’s export) masked', () => {
    capture = captureLogs();
    logJson({ level: 'error', msg: 'trail append failed', error: `ValidationException: ${EMAIL}` });
    middlewareLog({ level: 'warn', msg: 'x', cause: `Error: card ${CARD} declined` });
    expect(capture.lines.length).toBe(2);
    for (const raw of RAW) expect(printed()).not.toContain(raw);
    expect(printed()).toContain('[EMAIL]');
    expect(printed()).toContain('[CARD]');
  });

  it('masks the cause and the stack the error handler logs for a 5xx', () => {
    capture = captureLogs();
    const cause = new Error(`connection reset while sending WHERE ssn = '${SSN}' AND email = '${EMAIL}'`);
    errorResult(
      new ServiceUnavailableError('the audit store is unavailable; nothing was run', cause),
      'req-1',
      logJson,
    );
    errorResult(new TypeError(`cannot read ${CARD}`), 'req-2', logJson);
    errorResult(Object.assign(new ExecutionError(502, 'x', `failed for ${EMAIL}`)), 'req-3', logJson);
    expect(capture.lines.length).toBe(3);
    for (const raw of RAW) expect(printed()).not.toContain(raw);
    expect(printed()).toContain('[SSN]');
  });

  it('never throws on an entry JSON cannot hold, and says so', () => {
    const cyclic: Record<string, unknown> = { level: 'error' };
    cyclic.self = cyclic;
    const line = JSON.parse(maskedLogLine(cyclic)) as Record<string, unknown>;
    expect(line.msg).toBe('unloggable entry');
  });
});
