/**
 * The MCP project's own conformance suite (`@modelcontextprotocol/conformance`, its `server` mode)
 * against Warden's `/mcp` on the twin, for every scenario that applies to a tools-only server.
 *
 * The suite's client sends no credentials, so it talks to a loopback relay that adds a bearer token
 * (agent-demo's, what an agent would configure) and passes everything else through unchanged, both
 * ways — except that its own origin stands for Warden's, as behind any reverse proxy. Each scenario runs in its own process with the suite's exit code as the verdict.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/local/twin.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const SHIM = join(REPO_ROOT, 'test', 'support', 'conformance-node20.mjs');

/** Scenarios for the server Warden is: stateless streamable HTTP, tools only. */
export const APPLICABLE = [
  'server-initialize',
  'ping',
  'tools-list',
  // Several requests in flight at once, each answered on its own response.
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
] as const;

/**
 * Scenarios that do not apply, and why (the suite names them; none is a feature Warden offers):
 * - logging-set-level, tools-call-with-logging: no `logging` capability — a stateless server has no
 *   channel for log messages outside a call, and Warden logs to its own audit trail instead.
 * - completion-complete: no prompts or resource templates, so nothing to complete.
 * - tools-call-simple-text, -image, -audio, -embedded-resource, -mixed-content, -error,
 *   -with-progress, json-schema-2020-12: they call the suite's own test tools (`test_simple_text`,
 *   `test_image_content`, …), which a gateway with a fixed set of governed tools does not have.
 *   Warden's tools, their errors and their progress are tested in mcp-tools-schema.test.ts and
 *   mcp-wait.test.ts through the SDK client instead.
 * - tools-call-sampling, tools-call-elicitation, elicitation-sep1034-defaults,
 *   elicitation-sep1330-enums: server-to-client requests need a stream back to the client between
 *   requests; Warden is stateless (no GET stream) and never asks the client's model anything.
 * - server-sse-polling: resumable SSE (event ids, Last-Event-ID) needs server-side stream state.
 * - resources-*, prompts-*: Warden offers no resources or prompts.
 */
export const NOT_APPLICABLE = [
  'logging-set-level',
  'tools-call-with-logging',
  'completion-complete',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-error',
  'tools-call-with-progress',
  'json-schema-2020-12',
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'elicitation-sep1330-enums',
  'server-sse-polling',
  'resources-list',
  'resources-read-text',
  'resources-read-binary',
  'resources-templates-read',
  'resources-subscribe',
  'resources-unsubscribe',
  'prompts-list',
  'prompts-get-simple',
  'prompts-get-with-args',
  'prompts-get-embedded-resource',
  'prompts-get-with-image',
] as const;

let twin: TestTwin;
let relay: Server;
let relayUrl: string;
let workDir: string;

/** Passes requests to the twin with a bearer token added; nothing else is changed. */
function startRelay(target: string, token: string): Promise<Server> {
  const ownOrigin = () => `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined || ['host', 'connection', 'content-length'].includes(k)) continue;
        headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      headers.set('authorization', `Bearer ${token}`);
      // The relay stands where a reverse proxy would, so its own origin is Warden's public one (as
      // PUBLIC_URL would say behind a proxy); any other Origin goes through as sent.
      if (headers.get('origin') === ownOrigin()) headers.set('origin', new URL(target).origin);
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      fetch(`${target}${req.url}`, { method: req.method, headers, ...(body ? { body } : {}) })
        .then(async (upstream) => {
          const out: Record<string, string> = {};
          upstream.headers.forEach((v, k) => {
            if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k))
              out[k] = v;
          });
          res.writeHead(upstream.status, out);
          res.end(Buffer.from(await upstream.arrayBuffer()));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  twin = await startTestTwin();
  relay = await startRelay(twin.url, await twin.token('agent-demo'));
  const address = relay.address() as { port: number };
  relayUrl = `http://127.0.0.1:${address.port}/mcp`;
  workDir = mkdtempSync(join(tmpdir(), 'warden-conformance-'));
}, 120_000);

afterAll(async () => {
  await new Promise((r) => relay?.close(r));
  await twin?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** "Passed: 2/2, 0 failed, 0 warnings" from the suite's summary. */
function summaryOf(stdout: string): { passed: number; total: number; failed: number } | undefined {
  const m = /Passed: (\d+)\/(\d+), (\d+) failed/.exec(stdout);
  return m ? { passed: Number(m[1]), total: Number(m[2]), failed: Number(m[3]) } : undefined;
}

describe('MCP conformance suite (server mode)', () => {
  it('lists every server scenario of this suite version either as applicable or with a reason', async () => {
    const { stdout } = await run(process.execPath, ['--import', SHIM, CLI, 'list'], { cwd: workDir });
    const server = stdout.slice(0, stdout.indexOf('Client scenarios'));
    const names = [...server.matchAll(/^\s+- ([\w-]+)/gm)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(10);
    expect([...names].sort()).toEqual([...APPLICABLE, ...NOT_APPLICABLE].sort());
  });

  it.each(APPLICABLE)(
    '%s passes',
    async (scenario) => {
      const result = await run(
        process.execPath,
        ['--import', SHIM, CLI, 'server', '--url', relayUrl, '--scenario', scenario],
        {
          cwd: workDir,
          timeout: 60_000,
        },
      ).catch((error: { code?: number; stdout?: string; stderr?: string }) => error);
      const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
      const summary = summaryOf(result.stdout ?? '');
      expect(summary, output).toBeDefined();
      expect(summary!.failed, output).toBe(0);
      expect(summary!.passed, output).toBe(summary!.total);
      expect(summary!.total, output).toBeGreaterThan(0);
      // The suite's own verdict too: its exit code.
      expect((result as { code?: number }).code ?? 0, output).toBe(0);
    },
    90_000,
  );
});
