/**
 * The API function's side of the write path (issue 13 item 14): an allowed write it recorded runs
 * in the execute function. When the invocation fails, the caller is told honestly: before the
 * execute function took the request, the request is failed (it can never run later) and nothing
 * ran (503); after, the outcome is unknown (502). Faults fail closed.
 */
import { describe, expect, it } from 'vitest';
import { ConditionFailedError, WardenError } from '../../lambdas/core/errors.js';
import {
  runInExecuteFunction,
  type ExecutionDispatch,
  type RequestDeps,
} from '../../lambdas/core/requests.js';
import type { RequestRecord, RequestStatus } from '../../lambdas/core/types.js';

function record(): RequestRecord {
  return {
    id: 'r_0123456789abcdef',
    target: 'demo',
    principal: 'User::"bob"',
    principalName: 'bob',
    principalType: 'User',
    groups: ['dba'],
    sessionId: 's_x',
    createdAt: '2026-12-02T00:00:00.000Z',
    updatedAt: '2026-12-02T00:00:00.000Z',
    status: 'running',
    operation: { kind: 'sql', sql: "UPDATE orders SET status = 'x' WHERE id = 1" },
    decision: {
      outcome: 'allow',
      action: 'sql:write',
      determiningPolicies: ['p'],
      errors: [],
      policyVersion: 'v',
    },
    version: 1,
  } as RequestRecord;
}

function storeWith(stored: RequestRecord) {
  const items = new Map([[stored.id, stored]]);
  return {
    items,
    requests: {
      create: async () => undefined,
      get: async (id: string) => items.get(id),
      update: async (next: RequestRecord, expected: number, statuses?: readonly RequestStatus[]) => {
        const now = items.get(next.id)!;
        if (now.version !== expected || (statuses && !statuses.includes(now.status)))
          throw new ConditionFailedError();
        items.set(next.id, next);
        return next;
      },
      listByPrincipal: async () => [],
      listPendingPage: async () => ({ records: [] }),
    },
  };
}

function deps(store: ReturnType<typeof storeWith>, dispatch: ExecutionDispatch): RequestDeps {
  return { requests: store.requests, dispatch, clock: { now: () => new Date() } } as unknown as RequestDeps;
}

const exact = { operation: record().operation };
const meta = { sessionId: 's_x', token: 'token' };

describe('runInExecuteFunction', () => {
  it('fails an untaken request when the execute function cannot be reached: 503, nothing ran', async () => {
    const store = storeWith(record());
    const failing: ExecutionDispatch = {
      run: async () => Promise.reject(new Error('TooManyRequestsException')),
    };
    const error = await runInExecuteFunction(deps(store, failing), record(), exact, meta).catch((e) => e);
    expect(error).toBeInstanceOf(WardenError);
    expect(error).toMatchObject({ statusCode: 503, code: 'execute_unavailable', requestId: record().id });
    expect(store.items.get(record().id)).toMatchObject({ status: 'failed', version: 2 });
  });

  it('says the outcome is unknown when the execute function took the request and then failed: 502', async () => {
    const store = storeWith(record());
    const takesThenFails: ExecutionDispatch = {
      run: async () => {
        store.items.set(record().id, { ...record(), version: 2 });
        throw new Error('timeout');
      },
    };
    const error = await runInExecuteFunction(deps(store, takesThenFails), record(), exact, meta).catch(
      (e) => e,
    );
    expect(error).toMatchObject({ statusCode: 502, code: 'execution_outcome_unknown' });
    // Not marked failed: it may have run.
    expect(store.items.get(record().id)).toMatchObject({ status: 'running', version: 2 });
  });

  it('passes the execute function’s refusal on as the caller’s error, with the request id', async () => {
    const store = storeWith(record());
    const refusing: ExecutionDispatch = {
      run: async () => ({
        ok: false,
        error: {
          statusCode: 403,
          code: 'execution_refused',
          message: 'policy does not allow; nothing was run',
        },
      }),
    };
    await expect(runInExecuteFunction(deps(store, refusing), record(), exact, meta)).rejects.toMatchObject({
      statusCode: 403,
      code: 'execution_refused',
      requestId: record().id,
    });
  });

  it('hands the execute function the request id, the caller’s token and the exact form; never runs without a token', async () => {
    const store = storeWith(record());
    const seen: unknown[] = [];
    const recording: ExecutionDispatch = {
      run: async (request) => {
        seen.push(request);
        return {
          ok: true,
          record: { ...record(), status: 'executed', version: 3 },
          body: { rowCount: 1 } as never,
        };
      },
    };
    const out = await runInExecuteFunction(deps(store, recording), record(), exact, meta);
    expect(out.stored.status).toBe('executed');
    expect(seen).toEqual([{ requestId: record().id, token: 'token', exact }]);
    const noToken = await runInExecuteFunction(deps(storeWith(record()), recording), record(), exact, {
      sessionId: 's_x',
    }).catch((e) => e);
    expect(noToken).toMatchObject({ statusCode: 503, code: 'execute_unavailable' });
    expect(seen).toHaveLength(1);
  });
});
