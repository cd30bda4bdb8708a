/**
 * Warden's client for upstream MCP servers (lambdas/adapters/mcp-upstream.ts) against real SDK
 * servers that want credentials: a static header from a secret, and OAuth client credentials from
 * a token endpoint. Wrong credentials fail closed with an error that names no secret, and the
 * secret goes only to the configured upstream.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createUpstreamMcp } from '../../lambdas/adapters/mcp-upstream.js';
import { parseConfig, type McpTargetConfig } from '../../lambdas/core/config.js';
import { hostMcpServer, type UpstreamProcess } from '../../lib/local/upstream-mcp.js';

const STATIC = 'Bearer static-upstream-token-7f3a';
const CLIENT_SECRET = 'client-secret-9c1d';
const ISSUED = 'issued-access-token-42';

function factory() {
  const server = new McpServer({ name: 'guarded', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Echoes', inputSchema: { x: z.string() }, annotations: { readOnlyHint: true } },
    async ({ x }) => ({ content: [{ type: 'text', text: `ok ${x}` }] }),
  );
  return { server };
}

let staticUp: UpstreamProcess;
let oauthUp: UpstreamProcess;
let tokenUrl: string;
let tokenServer: ReturnType<typeof createServer>;
const tokenRequests: string[] = [];
const seenAuth: string[] = [];

function target(input: Record<string, unknown>): McpTargetConfig {
  return parseConfig({ targets: { t: { kind: 'mcp', ...input } } }).targets.t as McpTargetConfig;
}

async function body(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of req) s += String(chunk);
  return s;
}

beforeAll(async () => {
  staticUp = await hostMcpServer(factory, {
    authorize: (h) => {
      seenAuth.push(String(h['x-api-key'] ?? ''));
      return h['x-api-key'] === STATIC;
    },
  });
  oauthUp = await hostMcpServer(factory, { authorize: (h) => h.authorization === `Bearer ${ISSUED}` });
  tokenServer = createServer((req, res) => {
    void body(req).then((b) => {
      tokenRequests.push(b);
      const form = new URLSearchParams(b);
      const ok =
        form.get('grant_type') === 'client_credentials' &&
        form.get('client_id') === 'warden' &&
        form.get('client_secret') === CLIENT_SECRET;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          ok ? { access_token: ISSUED, token_type: 'Bearer', expires_in: 600 } : { error: 'invalid_client' },
        ),
      );
    });
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', () => r()));
  tokenUrl = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
});

afterAll(async () => {
  await staticUp?.close();
  await oauthUp?.close();
  tokenServer?.closeAllConnections();
  await new Promise<void>((r) => tokenServer?.close(() => r()));
});

describe('upstream MCP credentials', () => {
  it('sends a static header from the secret and lists and calls tools', async () => {
    const client = createUpstreamMcp({
      targets: {
        t: target({ url: staticUp.url, auth: { type: 'header', header: 'X-Api-Key', secret: 'env:T_KEY' } }),
      },
      env: { T_KEY: STATIC },
    });
    expect((await client.listTools('t')).map((t) => t.name)).toEqual(['whoami']);
    const out = await client.callTool('t', 'whoami', { x: 'a' }, { timeoutMs: 2000 });
    expect(out.content).toEqual([{ type: 'text', text: 'ok a' }]);
  });

  it('fails closed with a wrong or missing credential, and the error names no secret', async () => {
    const wrong = createUpstreamMcp({
      targets: {
        t: target({ url: staticUp.url, auth: { type: 'header', header: 'X-Api-Key', secret: 'env:T_KEY' } }),
      },
      env: { T_KEY: 'Bearer guessed' },
    });
    const err = await wrong.listTools('t').then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('upstream_unavailable');
    expect(err?.message).not.toContain('guessed');
    const missing = createUpstreamMcp({
      targets: {
        t: target({ url: staticUp.url, auth: { type: 'header', header: 'X-Api-Key', secret: 'env:NOPE' } }),
      },
      env: {},
    });
    await expect(missing.callTool('t', 'whoami', { x: 'a' }, { timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'upstream_secret_missing',
    });
  });

  it('gets an access token with client credentials, caches it, and uses it', async () => {
    const client = createUpstreamMcp({
      targets: {
        t: target({
          url: oauthUp.url,
          auth: {
            type: 'oauth_client_credentials',
            tokenUrl,
            clientId: 'warden',
            secret: 'env:T_SECRET',
            scope: 'tools',
          },
        }),
      },
      env: { T_SECRET: CLIENT_SECRET },
    });
    const before = tokenRequests.length;
    expect((await client.listTools('t')).map((t) => t.name)).toEqual(['whoami']);
    await client.callTool('t', 'whoami', { x: 'b' }, { timeoutMs: 2000 });
    await client.listTools('t');
    expect(tokenRequests.length - before).toBe(1);
    expect(new URLSearchParams(tokenRequests[tokenRequests.length - 1]).get('scope')).toBe('tools');
  });

  it('refuses when the token endpoint refuses the client, naming the target, not the secret', async () => {
    const client = createUpstreamMcp({
      targets: {
        t: target({
          url: oauthUp.url,
          auth: { type: 'oauth_client_credentials', tokenUrl, clientId: 'warden', secret: 'env:T_SECRET' },
        }),
      },
      env: { T_SECRET: 'wrong-secret' },
    });
    const err = await client.listTools('t').then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('upstream_auth_failed');
    expect(err?.message).toContain('"t"');
    expect(err?.message).not.toContain('wrong-secret');
  });

  it("never sends one target's credential to another target", async () => {
    seenAuth.length = 0;
    const client = createUpstreamMcp({
      targets: {
        a: target({ url: staticUp.url, auth: { type: 'none' } }),
        b: target({ url: oauthUp.url, auth: { type: 'header', header: 'X-Api-Key', secret: 'env:T_KEY' } }),
      },
      env: { T_KEY: STATIC },
    });
    await expect(client.listTools('a')).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(seenAuth.every((v) => v === '')).toBe(true);
  });
});
