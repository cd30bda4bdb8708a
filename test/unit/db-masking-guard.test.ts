/**
 * The database masking guard tells "the check found a problem" (403, kept for 30 s) from "the check
 * could not run" (throttled, 5xx, timeout: 503, not kept, the next masked request checks again).
 * Either way a masked request is refused and nothing runs. The client is a stand-in (unit test).
 */
import type { RDSDataClient } from '@aws-sdk/client-rds-data';
import { describe, expect, it } from 'vitest';
import { createDbMaskingGuard } from '../../lambdas/adapters/db-masking.js';
import { parseConfig } from '../../lambdas/core/config.js';
import { demoConfig } from '../../lib/local/demo-config.js';

function failingClient(error: () => Error): { client: RDSDataClient; calls: () => number } {
  let n = 0;
  const client = {
    send: async () => {
      n += 1;
      throw error();
    },
  } as unknown as RDSDataClient;
  return { client, calls: () => n };
}

const sdkError = (name: string, status: number) =>
  Object.assign(new Error(`${name} from the service`), { name, $metadata: { httpStatusCode: status } });

const config = parseConfig(demoConfig());

describe('the database masking guard', () => {
  it.each([
    ['a throttle', () => sdkError('ThrottlingException', 429)],
    ['a 5xx', () => sdkError('InternalServerErrorException', 500)],
    ['a dropped socket', () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('answers 503 on %s and checks again on the next request', async (_what, error) => {
    const { client, calls } = failingClient(error);
    const guard = createDbMaskingGuard({ config, client });
    await expect(guard.ensure('demo')).rejects.toMatchObject({
      statusCode: 503,
      code: 'masking_check_unavailable',
    });
    const first = calls();
    await expect(guard.ensure('demo')).rejects.toMatchObject({ code: 'masking_check_unavailable' });
    expect(calls()).toBeGreaterThan(first);
  });

  it('answers 403 when the check fails for a reason that is not transient, and keeps that answer', async () => {
    const { client, calls } = failingClient(() => sdkError('ForbiddenException', 403));
    const guard = createDbMaskingGuard({ config, client });
    await expect(guard.ensure('demo')).rejects.toMatchObject({
      statusCode: 403,
      code: 'masking_not_enforced',
    });
    const first = calls();
    await expect(guard.ensure('demo')).rejects.toMatchObject({ code: 'masking_not_enforced' });
    expect(calls()).toBe(first);
  });
});
