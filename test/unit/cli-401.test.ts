/**
 * A gateway 401 while the CLI uses the token `warden login` stored: the error says how to sign in
 * again (exit 4); with a token passed by --token or WARDEN_TOKEN the gateway's answer stands.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CliError, EXIT, call } from '../../bin/cli-client.js';
import { CredentialStore } from '../../bin/cli-credentials.js';
import { main } from '../../bin/cli-program.js';

let server: Server;
let url: string;
let dir: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(String(req.headers.authorization));
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': 'Bearer error="invalid_token"',
    });
    res.end(JSON.stringify({ error: { code: 'unauthorized', message: 'token signature is invalid' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'warden-401-'));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('a 401 on a stored sign-in', () => {
  it('call() says to run warden login --url <gateway>, exit 4', async () => {
    const error = await call(
      { url, token: 'stored.jwt.token', source: 'login' },
      'GET',
      '/v1/approvals',
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT.unreachable);
    expect((error as Error).message).toBe(
      `the gateway at ${url} refused your stored sign-in (401: token signature is invalid): ` +
        `run \`warden login --url ${url}\` to sign in again`,
    );
  });

  it('leaves a 401 on an explicit token as the gateway answered it', async () => {
    for (const source of ['flag', 'env'] as const) {
      const res = await call({ url, token: 'explicit', source }, 'GET', '/v1/approvals');
      expect(res.status).toBe(401);
    }
  });

  it('the whole CLI prints it, with the token warden login stored for that gateway', async () => {
    const config = join(dir, 'config');
    new CredentialStore(join(config, 'warden', 'credentials.json')).put(url, {
      issuer: `${url}/oidc`,
      clientId: 'warden-cli',
      accessToken: 'stored-access-token',
      tokenType: 'Bearer',
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
      grant: 'authorization_code',
      obtainedAt: new Date().toISOString(),
    });
    const env = { WARDEN_TOKEN: process.env.WARDEN_TOKEN, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
    delete process.env.WARDEN_TOKEN;
    process.env.XDG_CONFIG_HOME = config;
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      process.exitCode = undefined;
      seen.length = 0;
      await main(['--url', url, 'approvals']);
      expect(seen).toContain('Bearer stored-access-token');
      expect(process.exitCode).toBe(EXIT.unreachable);
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain(
        `run \`warden login --url ${url}\``,
      );
    } finally {
      process.exitCode = undefined;
      vi.restoreAllMocks();
      if (env.WARDEN_TOKEN !== undefined) process.env.WARDEN_TOKEN = env.WARDEN_TOKEN;
      if (env.XDG_CONFIG_HOME !== undefined) process.env.XDG_CONFIG_HOME = env.XDG_CONFIG_HOME;
      else delete process.env.XDG_CONFIG_HOME;
    }
  });
});
