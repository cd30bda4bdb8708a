/**
 * A local twin for one integration test file (each file runs in its own process, so the handlers'
 * environment is read once per file as on Lambda). Smaller demo data keeps start-up short.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devToken } from '../../bin/cli-client.js';
import { startLocalTwin, type Twin, type TwinOptions } from '../../lib/local/twin.js';

export interface TestTwin extends Twin {
  token(user: string): Promise<string>;
  /** fetch against the twin with JSON in and out. */
  api(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string },
  ): Promise<{ status: number; headers: Headers; body: any }>;
}

export async function startTestTwin(options: Partial<TwinOptions> = {}): Promise<TestTwin> {
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-twin-'));
  const twin = await startLocalTwin({
    port: 0,
    dataDir,
    ephemeral: true,
    customers: 300,
    upstreamMcp: false,
    ...options,
  });
  const tokens = new Map<string, string>();
  return {
    ...twin,
    async token(user: string) {
      if (!tokens.has(user)) tokens.set(user, await devToken(twin.url, user));
      return tokens.get(user)!;
    },
    async api(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${twin.url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      return { status: res.status, headers: res.headers, body: parsed };
    },
    async close() {
      await twin.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
