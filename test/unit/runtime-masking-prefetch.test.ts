/**
 * The API function's cold start starts each masking target's database masking check (createRuntime
 * with warmUp), so the first masked request does not wait for its round trips; the outcome is kept
 * exactly as if that request had started the check. Against a Data API endpoint on loopback that
 * answers every statement with an error, as a target that never ran `warden db setup` would.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ALL_TABLES, tableEnvVar } from '../../lib/tables.js';
import { createRuntime } from '../../lambdas/handlers/runtime.js';
import { waitFor } from '../support/wait.js';

let dataApi: Server;
let endpoint: string;
const statements: string[] = [];
let connections = 0;

beforeAll(async () => {
  dataApi = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      statements.push((JSON.parse(body) as { sql?: string }).sql ?? '');
      res.statusCode = 400;
      res.setHeader('x-amzn-errortype', 'BadRequestException');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ message: 'ERROR: relation "warden_masked.customers" does not exist' }));
    });
  });
  dataApi.on('connection', () => (connections += 1));
  await new Promise<void>((r) => dataApi.listen(0, '127.0.0.1', () => r()));
  endpoint = `http://127.0.0.1:${(dataApi.address() as AddressInfo).port}`;
  for (const def of ALL_TABLES) vi.stubEnv(tableEnvVar(def), `test-${def.logicalName}`);
  // The SDK clients read the process environment.
  for (const [k, v] of Object.entries(awsEnv())) vi.stubEnv(k, v);
});

function awsEnv(): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_RDS_DATA: endpoint,
    AWS_MAX_ATTEMPTS: '1',
  };
}

afterAll(async () => {
  vi.unstubAllEnvs();
  await new Promise<void>((r) => dataApi.close(() => r()));
});

function env(): NodeJS.ProcessEnv {
  const sql = (masking: unknown) => ({
    kind: 'sql',
    resourceArn: 'arn:aws:rds:us-east-1:111122223333:cluster:c',
    database: 'd',
    secrets: { read: 'r', write: 'w', maskedRead: 'mr', maskedWrite: 'mw' },
    masking,
  });
  return {
    WARDEN_CONFIG: JSON.stringify({
      targets: {
        masked: sql({ rules: [{ column: 'customers.ssn', strategy: 'redact', type: 'SSN' }] }),
        plain: sql({ rules: [] }),
      },
    }),
    OIDC_ISSUER: 'https://idp.example.com',
    OIDC_AUDIENCE: 'warden',
    OIDC_JWKS_URI: 'http://127.0.0.1:9/jwks',
    MASKING_HASH_KEY: 'k'.repeat(40),
    WARDEN_SEAL_KEY: Buffer.alloc(32, 7).toString('base64url'),
    WARDEN_POLICY_MAC_KEY: Buffer.alloc(32, 9).toString('base64url'),
    ...awsEnv(),
  };
}

describe('database masking check at cold start', () => {
  it('starts the check of each masking target during init, and serves its outcome without asking again', async () => {
    statements.length = 0;
    const runtime = await createRuntime(env(), { warmUp: true, hashing: false, sealing: false });
    // No request has been made: the check ran on its own.
    await waitFor(async () => (statements.length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    const asked = statements.length;
    // The target never set up: masked principals are refused, nothing runs, and the failure
    // learnt at init is what the request gets (no second check within 30 s).
    await expect(runtime.dbMasking?.ensure('masked')).rejects.toMatchObject({
      statusCode: 403,
      code: 'masking_not_enforced',
    });
    expect(statements.length).toBe(asked);
    // Statements go over the connections the check opened (one client, one pool): on Lambda the
    // first read after a cold start pays no TLS handshake of its own.
    const opened = connections;
    expect(opened).toBeGreaterThan(0);
    await expect(
      runtime.sql.execute({ target: 'plain', level: 'read', sql: 'SELECT 1', maxRows: 10 }),
    ).rejects.toThrow();
    expect(statements.at(-1)).toBe('SELECT 1');
    expect(connections).toBe(opened);
  });

  it('leaves targets without masking rules, and functions without the warm-up, to the first masked request', async () => {
    statements.length = 0;
    const runtime = await createRuntime(env(), { hashing: false, sealing: false });
    await new Promise((r) => setTimeout(r, 200));
    expect(statements).toEqual([]);
    await expect(runtime.dbMasking?.ensure('plain')).rejects.toMatchObject({ code: 'masking_not_enforced' });
    expect(statements.length).toBeGreaterThan(0);
  });
});
