/** `warden sql | explain | aws | request | requests`: ask Warden to run something, and follow it. */
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from './cli-client.js';
import { examples, jsonOption, request } from './cli-common.js';
import { explainText, requestsText, requestText, submissionText } from './cli-format.js';

const enc = encodeURIComponent;

/** `--params '{"id": 7}'` (by name) or the API's own `[{"name":"id","value":7}]`. */
export function sqlParameters(value: string): unknown[] {
  const parsed = jsonOption('--params')(value);
  if (Array.isArray(parsed)) return parsed;
  if (parsed && typeof parsed === 'object') {
    return Object.entries(parsed).map(([name, v]) => ({ name, value: v }));
  }
  throw new InvalidArgumentError(
    '--params: expected a JSON object {"name": value} or an array of {name, value}',
  );
}

interface SqlOptions {
  params?: unknown[];
  justification?: string;
  wait?: number;
}

/** `--wait <seconds>`: 0 to 25, the bound the gateway enforces (API Gateway's 30 s). */
function waitSeconds(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) > 25) {
    throw new InvalidArgumentError(
      `--wait: expected whole seconds from 0 to 25, got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/** An answer after a wait is the request itself (as `warden request` shows it); else a submission. */
function submissionOrRequestText(body: Record<string, unknown>): string {
  return 'createdAt' in body ? requestText(body) : submissionText(body);
}

function sqlBody(sql: string, o: SqlOptions): Record<string, unknown> {
  return {
    sql,
    ...(o.params ? { parameters: o.params } : {}),
    ...(o.justification !== undefined ? { justification: o.justification } : {}),
  };
}

export function register(program: Command): void {
  examples(
    program
      .command('sql')
      .description('run SQL through Warden (rows as a table; writes may wait for approval)')
      .argument('<target>', 'the target name, e.g. demo')
      .argument('<sql>', 'the statement (quote it)')
      .option('--params <json>', 'named parameters: \'{"id": 7}\' for :id', sqlParameters)
      .option('--justification <text>', 'why: shown to approvers, kept in the trail')
      .option(
        '--wait <seconds>',
        'if it needs approval, wait up to this long (max 25) for the decision',
        waitSeconds,
      )
      .action(async (target: string, sql: string, o: SqlOptions, cmd: Command) => {
        const query = o.wait ? `?wait=${o.wait}` : '';
        await request(
          cmd,
          'POST',
          `/v1/targets/${enc(target)}/sql${query}`,
          sqlBody(sql, o),
          submissionOrRequestText,
        );
      }),
    [
      'npx warden sql demo "SELECT id, name, email FROM customers LIMIT 3"',
      'npx warden sql --as carol demo "SELECT * FROM customers LIMIT 2"      # masked',
      'npx warden sql demo "SELECT * FROM orders WHERE id = :id" --params \'{"id": 7}\'',
      'npx warden sql demo "DELETE FROM orders WHERE id = 7" --justification "duplicate"   # waits for approval',
      'npx warden sql demo "DELETE FROM orders WHERE id = 7" --wait 20   # ...and holds up to 20 s for it',
      'npx warden sql demo "SELECT 1" --json | jq .result.rows',
    ],
  );

  examples(
    program
      .command('explain')
      .description('classify and decide a statement; run nothing')
      .argument('<target>', 'the target name')
      .argument('<sql>', 'the statement')
      .option('--params <json>', 'named parameters, as for sql', sqlParameters)
      .action(async (target: string, sql: string, o: SqlOptions, cmd: Command) => {
        await request(cmd, 'POST', `/v1/targets/${enc(target)}/explain`, sqlBody(sql, o), explainText);
      }),
    ['npx warden explain demo "DELETE FROM orders WHERE id = 1"'],
  );

  examples(
    program
      .command('aws')
      .description('call an AWS API through Warden with credentials scoped to this one call')
      .argument('<target>', 'the AWS target name, e.g. demo-aws')
      .argument('<service>', 'the service, e.g. dynamodb')
      .argument('<action>', 'the action, e.g. GetItem')
      .option('--input <json>', "the action's input as JSON", jsonOption('--input'), {})
      .option('--region <region>', "the region (default: the target's)")
      .option('--justification <text>', 'why: shown to approvers, kept in the trail')
      .option('--explain', 'classify and decide only; run nothing')
      .action(
        async (
          target: string,
          service: string,
          action: string,
          o: { input: unknown; region?: string; justification?: string; explain?: boolean },
          cmd: Command,
        ) => {
          if (typeof o.input !== 'object' || o.input === null || Array.isArray(o.input)) {
            throw new UsageError('--input: expected a JSON object');
          }
          const body = {
            service,
            action,
            input: o.input,
            ...(o.region ? { region: o.region } : {}),
            ...(o.justification !== undefined ? { justification: o.justification } : {}),
          };
          const path = `/v1/targets/${enc(target)}/${o.explain ? 'explain' : 'aws'}`;
          await request(cmd, 'POST', path, body, o.explain ? explainText : submissionText);
        },
      ),
    [
      'npx warden aws demo-aws dynamodb GetItem --input \'{"TableName":"warden-demo-orders","Key":{"id":{"S":"o-1"}}}\'',
      "npx warden aws demo-aws dynamodb DeleteItem --input '{…}' --explain",
    ],
  );

  examples(
    program
      .command('request')
      .description("one request's lifecycle and, once run, its masked result")
      .argument('<id>', 'the request id (r_…)')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        await request(cmd, 'GET', `/v1/requests/${enc(id)}`, undefined, requestText);
      }),
    ['npx warden request r_0123456789abcdef'],
  );

  examples(
    program
      .command('requests')
      .description('your recent requests, newest first')
      .action(async (_o: unknown, cmd: Command) => {
        await request(cmd, 'GET', '/v1/requests', undefined, requestsText);
      }),
    ['npx warden requests', 'npx warden requests --as bob --json'],
  );
}
