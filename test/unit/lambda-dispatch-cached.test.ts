/**
 * lambdaDispatch's Lambda client caches its resolved middleware (cacheMiddleware): every invocation
 * must still carry its own payload and get its own answer, also when several are in flight at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lambdaDispatch } from '../../lambdas/adapters/execute-dispatch.js';
import type { DirectExecution } from '../../lambdas/core/direct-execution.js';

const seen: { path: string; body: Record<string, unknown>; userAgent?: string }[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    seen.push({
      path: req.url ?? '',
      body,
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
    });
    // Answer after a delay that differs per request, so concurrent answers come back out of order.
    const id = String(body.requestId);
    setTimeout(
      () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, record: { id } }));
      },
      (Number(id.replace(/\D/g, '')) % 3) * 5,
    );
  });
});
let endpoint = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const execution = (n: number) =>
  ({ requestId: `r_${n}`, principal: `User::"u${n}"` }) as unknown as DirectExecution;

describe('lambdaDispatch with a cached-middleware client', () => {
  it('sends each invocation its own payload and returns its own answer, in sequence and concurrently', async () => {
    const dispatch = lambdaDispatch({ functionName: 'warden-execute', endpoint });
    for (const n of [1, 2, 3]) {
      await expect(dispatch.run(execution(n))).resolves.toEqual({ ok: true, record: { id: `r_${n}` } });
    }
    const answers = await Promise.all([4, 5, 6, 7, 8, 9].map((n) => dispatch.run(execution(n))));
    expect(answers.map((a) => (a as { record: { id: string } }).record.id)).toEqual([
      'r_4',
      'r_5',
      'r_6',
      'r_7',
      'r_8',
      'r_9',
    ]);
    expect(seen.map((s) => s.body.requestId).sort()).toEqual(
      ['r_1', 'r_2', 'r_3', 'r_4', 'r_5', 'r_6', 'r_7', 'r_8', 'r_9'].sort(),
    );
    for (const s of seen) {
      expect(s.path).toBe('/2015-03-31/functions/warden-execute/invocations');
      expect(s.body.mode).toBe('direct');
      expect(s.body.principal).toBe(`User::"u${String(s.body.requestId).slice(2)}"`);
      expect(s.userAgent).toMatch(/api\/lambda#/);
    }
  });
});
