/**
 * A third-party MCP client against the local twin: the MCP Inspector's CLI (its `--cli` mode, as
 * people run it with `npx @modelcontextprotocol/inspector --cli …`) lists Warden's tools and calls
 * one, over streamable HTTP with a bearer token, in its own process.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AWS_TABLE_NAME } from '../../lib/local/aws-enforcer.js';
import { REPO_ROOT } from '../../lib/local/twin.js';
import { startTestTwin, type TestTwin } from '../support/twin.js';

const run = promisify(execFile);
const INSPECTOR = join(REPO_ROOT, 'node_modules', '.bin', 'mcp-inspector-cli');
/**
 * inspector-cli 1.0.3 checks for `../package.json` relative to the working directory but imports
 * it relative to its own module, so it only starts from a directory one level below a package
 * root. Its own build directory is the one where both resolve to the same file.
 */
const INSPECTOR_CWD = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'inspector-cli', 'build');

let twin: TestTwin;
let token: string;

beforeAll(async () => {
  twin = await startTestTwin();
  token = await twin.token('carol');
}, 120_000);

afterAll(async () => {
  await twin?.close();
});

/** Async on purpose: the twin answers from this process's event loop. */
async function inspector(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return inspectorAs(token, ...args);
}

async function inspectorAs(bearer: string, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(
    INSPECTOR,
    [
      '--cli',
      `${twin.url}/mcp`,
      '--transport',
      'http',
      '--header',
      `Authorization: Bearer ${bearer}`,
      ...args,
    ],
    { cwd: INSPECTOR_CWD, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
  );
}

function jsonOf(stdout: string): any {
  return JSON.parse(stdout.slice(stdout.indexOf('{')));
}

describe('MCP Inspector CLI', () => {
  it('lists Warden’s tools with their annotations', async () => {
    const { stdout } = await inspector('--method', 'tools/list');
    const { tools } = jsonOf(stdout);
    expect(tools.map((t: { name: string }) => t.name).sort()).toEqual([
      'call_aws',
      'describe_target',
      'explain',
      'get_request',
      'list_targets',
      'request_access',
      'run_sql',
    ]);
    const runSql = tools.find((t: { name: string }) => t.name === 'run_sql');
    expect(runSql.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
  }, 90_000);

  it('calls run_sql and gets carol’s masked result', async () => {
    const { stdout } = await inspector(
      '--method',
      'tools/call',
      '--tool-name',
      'run_sql',
      '--tool-arg',
      'target=demo',
      'sql=SELECT ssn FROM customers ORDER BY id LIMIT 1',
    );
    const result = jsonOf(stdout);
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent.result.rows).toEqual([{ ssn: '[SSN]' }]);
  }, 90_000);

  /** One tool call through the Inspector; the Inspector's SDK client validates the structured result. */
  async function callTool(bearer: string, tool: string, ...toolArgs: string[]): Promise<any> {
    const { stdout } = await inspectorAs(
      bearer,
      '--method',
      'tools/call',
      '--tool-name',
      tool,
      ...(toolArgs.length ? ['--tool-arg', ...toolArgs] : []),
    );
    return jsonOf(stdout);
  }

  it('calls every other Warden tool successfully', async () => {
    const agent = await twin.token('agent-demo');
    const targets = await callTool(token, 'list_targets');
    expect(targets.isError).toBeFalsy();
    expect(targets.structuredContent.targets.map((t: any) => t.name)).toContain('demo');

    const described = await callTool(token, 'describe_target', 'target=demo');
    expect(described.isError).toBeFalsy();
    expect(described.structuredContent.tables.map((t: any) => t.name)).toContain('customers');

    const explained = await callTool(token, 'explain', 'target=demo', 'sql=DELETE FROM orders WHERE id = 1');
    expect(explained.isError).toBeFalsy();
    expect(explained.structuredContent.decision.outcome).toBe('deny');

    const aws = await callTool(
      agent,
      'call_aws',
      'target=demo-aws',
      'service=dynamodb',
      'action=DescribeTable',
      `input={"TableName":"${DEMO_AWS_TABLE_NAME}"}`,
    );
    expect(aws.isError, JSON.stringify(aws)).toBeFalsy();
    expect(aws.structuredContent.result.output.Table.TableName).toBe(DEMO_AWS_TABLE_NAME);

    const access = await callTool(
      agent,
      'request_access',
      'target=demo',
      'level=write',
      'duration=30m',
      'justification=inspector test',
    );
    expect(access.isError).toBeFalsy();
    expect(access.structuredContent.status).toBe('pending_approval');

    const followed = await callTool(agent, 'get_request', `requestId=${access.structuredContent.requestId}`);
    expect(followed.isError).toBeFalsy();
    expect(followed.structuredContent).toMatchObject({
      status: 'pending_approval',
      operation: { kind: 'access' },
    });
  }, 240_000);
});
