/**
 * The Warden CLI. `npx warden help` lists the commands.
 * It finds the gateway and credentials in --url/--token or WARDEN_URL/WARDEN_TOKEN; without a
 * token it asks the local twin's IdP for one (as alice, or --as <user>).
 */
import { parseArgs } from 'node:util';
import { call, devToken, gatewayUrl, type CliContext } from './cli-client.js';

const HELP = `Usage: npx warden <command> [options]

  dev                          run the local twin (same as npm start)
  token <user>                 print a bearer token from the local twin (alice, bob, carol, dave, erin, agent-demo)
  sql <target> <sql>           run SQL through Warden        [--justification TEXT] [--params JSON]
  explain <target> <sql>       classify and decide, run nothing
  requests                     list your recent requests
  approvals                    what awaits your approval
  approve|deny <id>            decide a pending request      [--comment TEXT]
  access <target> <write|ddl> <duration>  ask for a time-boxed grant   --justification TEXT
  grants [revoke <id>]         list your grants, or revoke one
  request <id>                 show one request's lifecycle and masked result
  policy validate [dir]        validate Cedar policy files against Warden's schema (default ./policies)
  policy push [dir]            validate, then make them the active policy set (DynamoDB)
  policy schema                print Warden's Cedar schema
  mcp tools <target>           admins: pinned upstream MCP tool definitions (and changed ones)
  mcp accept <target> <tool>   admins: accept a changed upstream tool definition   [--hash H]
  mask                         JSON lines on stdin -> masked JSON lines on stdout, counts on stderr
  sessions list                auditors: sessions   [--principal P] [--target T] [--outcome O] [--from ISO] [--to ISO]
  sessions show|replay|verify <id>   a session's events (JSON) | as it happened | check its hash chain
  audit queries                the named audit-lake queries
  audit query "<sql>"|<name>   run SQL over the local twin's audit export (DuckDB)  [--param V]… [--lake DIR] [--json]

Options: --url URL (WARDEN_URL, default http://127.0.0.1:8080)  --token T (WARDEN_TOKEN)
         --as USER (local twin: get a token for this dev user; default alice)  --session ID (X-Warden-Session)`;

async function context(values: {
  url?: string;
  token?: string;
  as?: string;
  session?: string;
}): Promise<CliContext> {
  const url = gatewayUrl(values.url);
  const token = values.token ?? process.env.WARDEN_TOKEN ?? (await devToken(url, values.as ?? 'alice'));
  return { url, token, ...(values.session ? { session: values.session } : {}) };
}

function print(status: number, body: unknown): void {
  console.log(JSON.stringify(body, null, 2));
  if (status >= 400) process.exitCode = 1;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      as: { type: 'string' },
      session: { type: 'string' },
      justification: { type: 'string' },
      comment: { type: 'string' },
      params: { type: 'string' },
      principal: { type: 'string' },
      target: { type: 'string' },
      outcome: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      limit: { type: 'string' },
      lake: { type: 'string' },
      param: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      hash: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (!command || values.help || command === 'help') {
    console.log(HELP);
    return;
  }
  switch (command) {
    case 'dev': {
      const { runDev } = await import('../lib/local/dev.js');
      await runDev();
      return;
    }
    case 'token': {
      const who = rest[0];
      if (!who) throw new Error('usage: warden token <user>');
      console.log(await devToken(gatewayUrl(values.url), who));
      return;
    }
    case 'sql':
    case 'explain': {
      const [target, sql] = rest;
      if (!target || !sql) throw new Error(`usage: warden ${command} <target> <sql>`);
      const ctx = await context(values);
      const body = {
        sql,
        ...(values.params ? { parameters: JSON.parse(values.params) as unknown } : {}),
        ...(values.justification ? { justification: values.justification } : {}),
      };
      const path = `/v1/targets/${encodeURIComponent(target)}/${command === 'sql' ? 'sql' : 'explain'}`;
      const res = await call(ctx, 'POST', path, body);
      print(res.status, res.body);
      return;
    }
    case 'approvals':
    case 'approve':
    case 'deny':
    case 'access':
    case 'grants': {
      const { approvalCommand } = await import('./approvals-cli.js');
      const res = await approvalCommand(await context(values), command, rest, values);
      print(res.status, res.body);
      return;
    }
    case 'requests': {
      const res = await call(await context(values), 'GET', '/v1/requests');
      print(res.status, res.body);
      return;
    }
    case 'request': {
      if (!rest[0]) throw new Error('usage: warden request <id>');
      const res = await call(await context(values), 'GET', `/v1/requests/${encodeURIComponent(rest[0])}`);
      print(res.status, res.body);
      return;
    }
    case 'policy': {
      const { policyCommand } = await import('./policy-cli.js');
      await policyCommand(rest);
      return;
    }
    case 'sessions': {
      const { sessionsCommand } = await import('./sessions-cli.js');
      process.exitCode = await sessionsCommand(await context(values), rest, values);
      return;
    }
    case 'audit': {
      const { auditCommand } = await import('./sessions-cli.js');
      process.exitCode = await auditCommand(rest, {
        lake: values.lake,
        params: values.param,
        json: values.json,
      });
      return;
    }
    case 'mcp': {
      const { mcpCommand } = await import('./mcp-cli.js');
      const res = await mcpCommand(await context(values), rest, values);
      print(res.status, res.body);
      return;
    }
    case 'mask': {
      const { maskJsonLines } = await import('../lambdas/core/masking/index.js');
      const counts = await maskJsonLines(process.stdin, process.stdout);
      process.stderr.write(`${JSON.stringify({ masked: counts })}\n`);
      return;
    }
    default:
      throw new Error(`unknown command "${command}"; try \`npx warden help\``);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`warden: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = process.exitCode || 2;
});
