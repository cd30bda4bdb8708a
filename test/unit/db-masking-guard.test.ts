/**
 * The database masking guard tells "the check found a problem" (403, kept for 30 s) from "the check
 * could not run" (throttled, 5xx, timeout: 503, not kept, the next masked request checks again).
 * Either way a masked request is refused and nothing runs. The client is a stand-in (unit test).
 */
import type { RDSDataClient } from '@aws-sdk/client-rds-data';
import { describe, expect, it } from 'vitest';
import { createDbMaskingGuard, dbMaskingRecheckFromEnv } from '../../lambdas/adapters/db-masking.js';
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

describe('the guard checks a pass again once it is old', () => {
  type Outcome = 'pass' | 'fail' | 'unavailable';
  /** A check whose next outcome the test sets; counts its runs. */
  function scripted(first: Outcome) {
    let next: Outcome = first;
    let runs = 0;
    let release: (() => void) | undefined;
    let held: Promise<void> | undefined;
    const check = async (name: string) => {
      runs += 1;
      const outcome = next;
      if (held) await held;
      return {
        target: name,
        ok: outcome === 'pass',
        problems:
          outcome === 'pass'
            ? []
            : ['warden_masked_ro cannot read public.customers.ssn: FAILED, the query ran'],
        passed: outcome === 'pass' ? ['every probe'] : [],
        ...(outcome === 'unavailable' ? { unavailable: true } : {}),
      };
    };
    return {
      check,
      runs: () => runs,
      then: (o: Outcome) => void (next = o),
      /** Checks started from now on wait until `open()`. */
      hold: () => void (held = new Promise<void>((r) => (release = r))),
      open: () => {
        held = undefined;
        release?.();
      },
    };
  }
  const settle = () => new Promise((r) => setTimeout(r, 0));
  let clock = 0;
  const now = () => clock;
  const guardWith = (s: ReturnType<typeof scripted>, log?: (e: Record<string, unknown>) => void) =>
    createDbMaskingGuard({ config, check: s.check, now, recheckSeconds: 300, ...(log ? { log } : {}) });

  it('finds a privilege granted after the pass and refuses masked principals from then on', async () => {
    clock = 0;
    const s = scripted('pass');
    const logged: Record<string, unknown>[] = [];
    const guard = guardWith(s, (e) => logged.push(e));
    await guard.ensure('demo');
    clock = 299_000;
    await guard.ensure('demo');
    expect(s.runs()).toBe(1);

    // Someone grants the masked reader SELECT on a base table; the pass is now 5 minutes old.
    s.then('fail');
    clock = 301_000;
    await guard.ensure('demo'); // still served while the re-check runs beside it
    expect(s.runs()).toBe(2);
    await settle();
    await expect(guard.ensure('demo')).rejects.toMatchObject({
      statusCode: 403,
      code: 'masking_not_enforced',
    });
    expect(logged.at(-1)).toMatchObject({
      level: 'error',
      msg: 'database masking check failed',
      recheck: true,
    });
    // The failure is kept for 30 s, then a repaired target is picked up.
    s.then('pass');
    clock = 320_000;
    await expect(guard.ensure('demo')).rejects.toMatchObject({ code: 'masking_not_enforced' });
    clock = 332_000;
    await guard.ensure('demo');
  });

  it('runs one re-check at a time however many requests arrive meanwhile, and a pass renews the pass', async () => {
    clock = 0;
    const s = scripted('pass');
    const guard = guardWith(s);
    await guard.ensure('demo');
    clock = 400_000;
    s.hold();
    await Promise.all(Array.from({ length: 20 }, () => guard.ensure('demo')));
    expect(s.runs()).toBe(2);
    s.open();
    await settle();
    clock = 690_000; // 290 s after the re-check started: the renewed pass serves without another
    await guard.ensure('demo');
    expect(s.runs()).toBe(2);
  });

  it('keeps the pass through a re-check that could not run, tries again 30 s later, and stops serving it when twice its age', async () => {
    clock = 0;
    const s = scripted('pass');
    const guard = guardWith(s);
    await guard.ensure('demo');
    s.then('unavailable');
    clock = 300_000;
    await guard.ensure('demo');
    await settle();
    await guard.ensure('demo'); // the throttled re-check taught nothing: the pass serves
    expect(s.runs()).toBe(2);
    clock = 310_000;
    await guard.ensure('demo');
    expect(s.runs()).toBe(2); // not again within 30 s
    clock = 331_000;
    await guard.ensure('demo');
    expect(s.runs()).toBe(3);
    await settle();
    // Ten minutes after the pass and the database still cannot be checked: the pass is not used.
    clock = 600_000;
    await expect(guard.ensure('demo')).rejects.toMatchObject({
      statusCode: 503,
      code: 'masking_check_unavailable',
    });
    s.then('pass');
    await guard.ensure('demo');
  });

  it('a re-check that fails while a fresh pass is being waited for never resurrects the old pass', async () => {
    clock = 0;
    const s = scripted('pass');
    const guard = guardWith(s);
    await guard.ensure('demo');
    s.then('fail');
    clock = 300_000;
    await guard.ensure('demo');
    await settle();
    clock = 301_000;
    await expect(guard.ensure('demo')).rejects.toMatchObject({ code: 'masking_not_enforced' });
    clock = 700_000;
    await expect(guard.ensure('demo')).rejects.toMatchObject({ code: 'masking_not_enforced' });
  });
});

describe('DB_MASKING_RECHECK_SECONDS', () => {
  it('takes whole seconds from 1 to 86400 and refuses anything else by name', () => {
    expect(dbMaskingRecheckFromEnv({})).toBeUndefined();
    expect(dbMaskingRecheckFromEnv({ DB_MASKING_RECHECK_SECONDS: '' })).toBeUndefined();
    expect(dbMaskingRecheckFromEnv({ DB_MASKING_RECHECK_SECONDS: '1' })).toBe(1);
    expect(dbMaskingRecheckFromEnv({ DB_MASKING_RECHECK_SECONDS: '86400' })).toBe(86_400);
    for (const bad of ['0', '86401', '-5', '1.5', '5m', ' 60', 'Infinity', '1e3']) {
      expect(() => dbMaskingRecheckFromEnv({ DB_MASKING_RECHECK_SECONDS: bad })).toThrow(
        /DB_MASKING_RECHECK_SECONDS must be a whole number of seconds from 1 to 86400/,
      );
    }
  });
});
