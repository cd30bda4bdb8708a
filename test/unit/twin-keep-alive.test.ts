/**
 * Every twin server advertises a shorter keep-alive than it keeps (lib/local/listen.ts): a client
 * that drops idle sockets by the advertised 5 s, late because its process was busy, still finds
 * the server holding the connection, rather than a reset (which failed the masking suite's first
 * request after a 4.5 s table scan on every run).
 */
import { createServer, request, Agent } from 'node:http';
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startDynalite } from '../../lib/local/dynamodb.js';
import {
  ADVERTISED_KEEP_ALIVE_SECONDS,
  closeServer,
  KEEP_ALIVE_MS,
  keepAliveWithMargin,
  listenLoopback,
} from '../../lib/local/listen.js';

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});

function call(
  url: string,
  agent: Agent,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, socket: req.socket }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

describe('twin servers keep idle connections longer than they advertise', () => {
  it('advertises 5 s and keeps 30 s; a request that asks to close is closed', async () => {
    expect(KEEP_ALIVE_MS).toBeGreaterThan(ADVERTISED_KEEP_ALIVE_SECONDS * 1000 * 4);
    const server = keepAliveWithMargin(createServer((_req, res) => res.end('ok')));
    expect(server.keepAliveTimeout).toBe(KEEP_ALIVE_MS);
    const url = await listenLoopback(server);
    closers.push(() => closeServer(server));
    const agent = new Agent({ keepAlive: true });
    const first = await call(url, agent);
    expect(first.headers['keep-alive']).toBe(`timeout=${ADVERTISED_KEEP_ALIVE_SECONDS}`);
    expect(first.headers.connection).toBe('keep-alive');
    const closing = await call(url, new Agent({ keepAlive: false }), { connection: 'close' });
    expect(closing.headers.connection).toBe('close');
    expect(closing.headers['keep-alive']).toBeUndefined();
    agent.destroy();
  });

  it('holds a connection idle past the advertised time, so a late client reuses it safely', async () => {
    const server = keepAliveWithMargin(createServer((_req, res) => res.end('ok')));
    const url = new URL(await listenLoopback(server));
    closers.push(() => closeServer(server));
    // One raw socket, used again after 7 s idle (Node closes a 5 s keep-alive at about 6 s), as a
    // client whose timer fired late would.
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const answered = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const check = setInterval(() => {
          if ((received.match(/HTTP\/1\.1 200/g) ?? []).length >= n) {
            clearInterval(check);
            resolve();
          }
        }, 10);
        socket.once('error', reject);
      });
    const ask = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
    socket.write(ask);
    await answered(1);
    await new Promise((r) => setTimeout(r, ADVERTISED_KEEP_ALIVE_SECONDS * 1000 + 2000));
    expect(socket.destroyed).toBe(false);
    socket.write(ask);
    await answered(2);
    socket.destroy();
  }, 20_000);

  it('applies to the twin DynamoDB (dynalite, its request listener swapped for transactions)', async () => {
    const dynamo = await startDynalite();
    closers.push(() => dynamo.close());
    const res = await call(dynamo.endpoint, new Agent({ keepAlive: true }), {
      'x-amz-target': 'DynamoDB_20120810.ListTables',
      'content-type': 'application/x-amz-json-1.0',
    });
    expect(res.headers['keep-alive']).toBe(`timeout=${ADVERTISED_KEEP_ALIVE_SECONDS}`);
  });
});
