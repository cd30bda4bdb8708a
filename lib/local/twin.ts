/**
 * The local twin: Warden's production handlers behind a local HTTP server, with every AWS service
 * they use replaced by a wire-compatible local one. Only endpoints differ (AWS_ENDPOINT_URL_*).
 *
 * One twin per process: the handlers read their environment once at cold start, as on Lambda.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { DynamoPolicyStore } from '../../lambdas/adapters/request-store.js';
import { DynamoTrailStore } from '../../lambdas/adapters/trail-store.js';
import { POLICY_SESSION, policyPushedEvent } from '../../lambdas/core/trail.js';
import { createDocumentClient } from '../../lambdas/adapters/dynamodb.js';
import { logJson } from '../../lambdas/core/log.js';
import { encodePolicySources, validatePolicySources } from '../../lambdas/core/policy-provider.js';
import { ALL_TABLES, tableEnvVar } from '../tables.js';
import { lambdaContext, readBody, toEvent, writeResult } from './apigw.js';
import { scheduleAuditExports, type AuditExport } from './audit-export.js';
import {
  startDataApiServer,
  type DataApiSecret,
  type PostgresConnection,
  type RestrictedDataApiEndpoint,
} from './data-api.js';
import { demoConfig } from './demo-config.js';
import type { WardenConfigInput } from '../../lambdas/core/config.js';
import { DEMO_ROLES, seedDemoDatabase } from './demo-data.js';
import { startAwsTwin, type AwsTwin } from './aws-enforcer.js';
import { createTables, localDynamoClient, startDynalite, type DynamoCall } from './dynamodb.js';
import { startDynamoWorker } from './dynamo-worker.js';
import { loadPolicyFiles } from './policy-files.js';
import { createDevIdp, type DevIdp } from './oidc.js';
import { createOutbox, type OutboxMessage } from './outbox.js';
import { startLocalLambda, type LocalLambda } from './lambda.js';
import { KMSClient } from '@aws-sdk/client-kms';
import { createKmsSigner } from '../../lambdas/adapters/signing.js';
import { startLocalKms } from './kms.js';
import { signPolicySet, verifyPolicySet } from '../../lambdas/core/policy-signature.js';
import { parseConfig } from '../../lambdas/core/config.js';
import { startLocalStepFunctions, type LocalStepFunctions } from './step-functions.js';
import { faultLayerFromConfig, type FaultConfig, type FaultLayer } from './faults.js';
import type { PolicySource } from '../../lambdas/core/policy.js';
import {
  everythingTarget,
  startEverythingServer,
  type McpTargetInput,
  type UpstreamProcess,
} from './upstream-mcp.js';
import { keepAliveWithMargin } from './listen.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const POLICY_DIR = join(REPO_ROOT, 'policies');
/** The execute function's name in the twin (EXECUTE_FUNCTION_NAME of the API function). */
export const EXECUTE_FUNCTION = 'warden-execute';

export interface TwinOptions {
  /** @default PORT or 8080 */
  readonly port?: number;
  /** @default 127.0.0.1 */
  readonly host?: string;
  /** Where state persists. @default WARDEN_DATA_DIR or .warden */
  readonly dataDir?: string;
  /**
   * Keep every store in memory (tests): nothing of the twin's state is read from or written to
   * `dataDir` but its keys. @default false: DynamoDB, PostgreSQL and the Step Functions executions
   * persist under `dataDir` and a restart carries on where the last run stopped.
   */
  readonly ephemeral?: boolean;
  /** Delete the state kept under `dataDir` before starting (`warden dev --reset`). @default false */
  readonly reset?: boolean;
  /** Demo customers generated on first start. @default 2000 */
  readonly customers?: number;
  readonly approvalWindowSeconds?: number;
  readonly requiredApprovals?: number;
  /** How often the Audit table is exported to `<dataDir>/audit-lake` (the scheduled export's stand-in). @default 30000 */
  readonly auditExportIntervalMs?: number;
  readonly log?: (line: string) => void;
  /**
   * Where the twin's DynamoDB runs: `inline`, this thread, with no hand-off between threads (each
   * store call answers sooner: one client's read is ~0.5 ms faster on a 2-core VM); or `thread`, a
   * worker thread of its own (lib/local/dynamo-worker.ts), so the store's CPU is on another core and
   * many concurrent clients get ~15% more reads/s (`npm run load` uses it).
   * @default WARDEN_TWIN_DYNAMO, else 'inline'
   */
  readonly dynamo?: 'thread' | 'inline';
  /** Fault injection in front of the AWS endpoints (lib/local/faults.ts). @default WARDEN_FAULTS, else none */
  readonly faults?: FaultConfig | string;
  /**
   * Upstream MCP targets: `everything` starts the MCP reference server as the `everything` target;
   * a record adds those targets as given; false adds none. @default 'everything'
   */
  readonly upstreamMcp?: 'everything' | false | Record<string, McpTargetInput>;
  /** Policies loaded next to the repo's policies/ files (tests). */
  readonly extraPolicies?: readonly PolicySource[];
  /**
   * Serve the demo target from a real PostgreSQL server instead of PGlite (tests): the Data API
   * twin logs in to it with each secret's own user and password. The database must already hold
   * the demo data and its setup; `db` is then an empty PGlite that serves nothing.
   */
  readonly postgres?: {
    readonly connection: PostgresConnection;
    readonly secrets: Record<string, DataApiSecret>;
  };
}

export interface Twin {
  readonly url: string;
  readonly port: number;
  readonly issuer: string;
  readonly idp: DevIdp;
  readonly dynamoEndpoint: string;
  /** Where its DynamoDB runs (TwinOptions.dynamo). */
  readonly dynamoMode: 'thread' | 'inline';
  readonly dataApiUrl: string;
  readonly statementLog: ReadonlyArray<{
    at: string;
    secretArn: string;
    role: string;
    sql: string;
    ok: boolean;
  }>;
  readonly db: PGlite;
  readonly dataDir: string;
  readonly tableNames: Record<string, string>;
  /** The local STS and the IAM-enforcing endpoint in front of DynamoDB (AWS targets). */
  readonly aws: AwsTwin;
  /** Approval notifications captured by `/dev/outbox`. */
  readonly outbox: readonly OutboxMessage[];
  /** The API function's Data API endpoint: refuses every secret but the readers' (its IAM policy). */
  readonly secretGate: RestrictedDataApiEndpoint;
  /** The Lambda endpoint the API function invokes the execute function through. */
  readonly lambda: LocalLambda;
  /** The Step Functions twin running the synthesized approval state machine. */
  readonly stepFunctions: LocalStepFunctions;
  /** Where the audit exports land (DYNAMODB_JSON under exports/AWSDynamoDB/<id>/data/). */
  readonly auditLakeDir: string;
  /** Exports the Audit table now, like the scheduled export. */
  exportAudit(): Promise<AuditExport>;
  /** The fault-injection layer, when faults are configured. */
  readonly faults?: FaultLayer;
  /** Sees every call that reaches the twin's DynamoDB from now on (store-call counting); returns `stop`. */
  onStoreCall(listener: (call: DynamoCall) => void): () => void;
  /**
   * A new instance of the API function, as Lambda starts after a scale-out or a deploy: its init
   * runs again (token verifier, policy set, masking checks, caches) and serves every request from
   * then on; resolves once that cold start has settled. Modules' own top-level state is shared.
   */
  restartApi(): Promise<void>;
  close(): Promise<void>;
}

/** What the twin keeps under its data directory (all of it goes on `--reset`). */
export const DATA_DIR_ENTRIES = [
  'dynamodb',
  'pg',
  'step-functions',
  'audit-lake',
  'secrets.json',
  'idp-keys.json',
  'idp-store.json',
  'twin-state.json',
  'endpoints.json',
] as const;

/** Removes the twin's state under `dataDir` (only the entries the twin itself writes). */
export function resetDataDir(dataDir: string): void {
  for (const entry of DATA_DIR_ENTRIES) rmSync(join(dataDir, entry), { recursive: true, force: true });
}

/** One twin per data directory: a second one would share PGlite's files and corrupt them. */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'twin.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new Error(
        `another local twin (pid ${pid}) is using ${dataDir}; stop it or set WARDEN_DATA_DIR to another directory`,
      );
    }
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Small facts about the state on disk, kept between runs (`<dataDir>/twin-state.json`). */
interface TwinState {
  /** The hash of the policy files last pushed from policies/ (a restart pushes only when they changed). */
  policyFilesHash?: string;
  /** The fingerprint of the database setup last applied to the demo database (see seedDemoDatabase). */
  appliedSetup?: string;
}

function readTwinState(dataDir: string): TwinState {
  try {
    return JSON.parse(readFileSync(join(dataDir, 'twin-state.json'), 'utf8')) as TwinState;
  } catch {
    return {};
  }
}

function writeTwinState(dataDir: string, state: TwinState): void {
  const file = join(dataDir, 'twin-state.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${file}.tmp`, file);
}

/** The twin's KMS key ids (policy, HMAC, sealing) and the access key ids it tells callers apart by. */
export const POLICY_KEY_ID = '7a3b2c1d-0000-4000-8000-000000000001';
const HMAC_KEY_ID = '7a3b2c1d-0000-4000-8000-000000000002';
const SEAL_KEY_ID = '7a3b2c1d-0000-4000-8000-000000000003';
export const FUNCTION_ACCESS_KEY = 'local-twin';
export const OPERATOR_ACCESS_KEY = 'local-operator';

function persistentSecret(dataDir: string, name: string): string {
  const file = join(dataDir, 'secrets.json');
  const secrets: Record<string, string> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  secrets[name] ??= randomBytes(32).toString('base64url');
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets[name];
}

export async function startLocalTwin(options: TwinOptions = {}): Promise<Twin> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => undefined);
  const dynamoMode = options.dynamo ?? process.env.WARDEN_TWIN_DYNAMO ?? 'inline';
  if (dynamoMode !== 'thread' && dynamoMode !== 'inline') {
    throw new Error(`WARDEN_TWIN_DYNAMO must be 'thread' or 'inline', not '${dynamoMode}'`);
  }
  const dataDir = resolve(options.dataDir ?? process.env.WARDEN_DATA_DIR ?? '.warden');
  mkdirSync(dataDir, { recursive: true });
  const persistent = !options.ephemeral;
  if (options.reset) resetDataDir(dataDir);
  const unlock = persistent ? lockDataDir(dataDir) : () => undefined;
  const twinState = persistent ? readTwinState(dataDir) : {};

  // DynamoDB runs on this thread by default, or in a thread of its own (`thread`), so the store's
  // CPU is on a second core (lib/local/dynamo-worker.ts); the thread loads while the rest starts.
  // Should it die, the twin closes rather than answer 5xx until someone notices.
  const started: { twin?: Twin; crashed?: Error } = {};
  const dynamoStarting = (dynamoMode === 'inline' ? startDynalite : startDynamoWorker)({
    host,
    ...(persistent ? { path: join(dataDir, 'dynamodb') } : {}),
    onExit(error) {
      logJson({
        level: 'error',
        msg: "the twin's DynamoDB thread ended; closing the twin",
        error: error.message,
        stack: error.stack,
      });
      started.crashed = error;
      void started.twin?.close();
    },
  });
  dynamoStarting.catch(() => undefined);

  // What takes time on its own starts first and is awaited where it is needed: PostgreSQL (PGlite
  // compiles its WebAssembly and opens its data directory) and the upstream MCP server (a child
  // process), while DynamoDB and the gateway's port come up.
  const db = !persistent || options.postgres ? new PGlite() : new PGlite(join(dataDir, 'pg'));
  const upstreamOption = options.upstreamMcp ?? 'everything';
  const upstreamStarting =
    upstreamOption === 'everything' ? startEverythingServer({ host }) : Promise.resolve(undefined);
  upstreamStarting.catch(() => undefined);
  // The API handler's modules load meanwhile (none reads the environment when loaded; the handler
  // itself does, so it is imported once the environment is set).
  const apiModules = preloadApiModules();

  /** A start that fails this early stops what it started, so the process can exit with the error. */
  const abandonStart = async () => {
    server.close();
    await dynamoStarting.then(
      (d) => d.close(),
      () => undefined,
    );
    await upstreamStarting.then(
      (u) => u?.close(),
      () => undefined,
    );
    await db.close().catch(() => undefined);
    unlock();
  };

  // The gateway's port decides the issuer URL, so listen first and attach the app once it exists.
  let app: ((req: IncomingMessage, res: ServerResponse) => void) | undefined = undefined;
  const server = createServer((req, res) => {
    if (!app) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { code: 'starting', message: 'Warden is starting' } }));
      return;
    }
    app(req, res);
  });
  keepAliveWithMargin(server);
  const port = options.port ?? Number(process.env.PORT ?? 8080);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolveListen());
  }).catch(async (error: unknown) => {
    await abandonStart();
    throw error;
  });
  const actualPort = (server.address() as AddressInfo).port;
  const url = `http://${host}:${actualPort}`;
  const issuer = `${url}/oidc`;

  log(`starting DynamoDB (dynalite${dynamoMode === 'thread' ? ', in a worker thread' : ''})…`);
  const dynamo = await dynamoStarting.catch(async (error: unknown) => {
    await abandonStart();
    throw error;
  });
  const tableNames: Record<string, string> = {};
  for (const def of ALL_TABLES) tableNames[def.logicalName] = `warden-${def.logicalName.toLowerCase()}`;
  const ddb = localDynamoClient(dynamo.endpoint);
  await createTables(ddb, ALL_TABLES, (def) => tableNames[def.logicalName]);
  const aws = await startAwsTwin({
    host,
    dynamoEndpoint: dynamo.endpoint,
    dynamoClient: ddb,
    config: demoConfig(),
  });
  // KMS, with the stack's three keys and their grants. The policy key: functions (access key
  // `local-twin`) may only verify a set's MAC; the operator (`warden policy push`, the twin's own
  // push below) may make one. The HMAC key (cookies, CSRF tokens, links) and the sealing key (exact
  // statements waiting for approval) are the functions'. Key material is kept in the data
  // directory, so a restart keeps signatures, cookies and sealed statements valid.
  const kms = await startLocalKms({
    host,
    keys: [
      {
        id: HMAC_KEY_ID,
        spec: 'HMAC_256',
        material: Buffer.from(persistentSecret(dataDir, 'hmacKey'), 'base64url'),
        grants: { [FUNCTION_ACCESS_KEY]: ['GenerateMac', 'VerifyMac'] },
      },
      {
        id: SEAL_KEY_ID,
        spec: 'SYMMETRIC_DEFAULT',
        material: Buffer.from(persistentSecret(dataDir, 'kmsSealKey'), 'base64url'),
        grants: { [FUNCTION_ACCESS_KEY]: ['GenerateDataKey', 'Decrypt'] },
      },
      {
        id: POLICY_KEY_ID,
        spec: 'HMAC_256',
        material: Buffer.from(persistentSecret(dataDir, 'policyMacKey'), 'base64url'),
        grants: {
          [FUNCTION_ACCESS_KEY]: ['VerifyMac'],
          [OPERATOR_ACCESS_KEY]: ['GenerateMac', 'VerifyMac'],
        },
      },
    ],
  });
  const policyKeyArn = kms.arnOf(POLICY_KEY_ID);
  const auditLakeDir = join(dataDir, 'audit-lake');
  const auditExports = scheduleAuditExports({
    client: ddb,
    tableName: tableNames.Audit,
    root: auditLakeDir,
    intervalMs: options.auditExportIntervalMs ?? 30_000,
    log,
  });

  log('starting PostgreSQL (PGlite) and the Data API endpoint…');
  await db.waitReady;
  if (!options.postgres) {
    // Generated once: a restart finds the tables and reapplies the setup only if it changed.
    const appliedSetup = await seedDemoDatabase(db, {
      customers: options.customers ?? 2000,
      ...(twinState.appliedSetup ? { appliedSetup: twinState.appliedSetup } : {}),
    });
    if (persistent && appliedSetup !== twinState.appliedSetup) {
      twinState.appliedSetup = appliedSetup;
      writeTwinState(dataDir, twinState);
    }
  }
  const dataApi = options.postgres
    ? await startDataApiServer({
        postgres: options.postgres.connection,
        secrets: options.postgres.secrets,
        resourceArn: demoConfigArn(),
      })
    : await startDataApiServer({ db, secrets: DEMO_ROLES, resourceArn: demoConfigArn() });
  // `warden db setup|check` on this machine find the Data API here (bin/db-cli.ts).
  const endpointsFile = join(dataDir, 'endpoints.json');
  writeFileSync(endpointsFile, JSON.stringify({ dataApi: dataApi.url, kms: kms.url, policyKeyArn }, null, 2));
  const faults = await faultLayerFromConfig(
    options.faults ?? process.env.WARDEN_FAULTS,
    { dynamodb: dynamo.endpoint, 'rds-data': dataApi.url },
    tableNames,
  );

  log('starting the OIDC provider…');
  const idp = await createDevIdp({
    issuer,
    audience: 'warden',
    redirectUris: [`${url}/approve/callback`],
    jwksPath: join(dataDir, 'idp-keys.json'),
    // `warden login`'s refresh token and grant survive a restart, like the keys.
    storePath: join(dataDir, 'idp-store.json'),
  });

  let upstream: UpstreamProcess | undefined;
  let mcpTargets: Record<string, McpTargetInput> = {};
  if (upstreamOption === 'everything') {
    log('starting the upstream MCP server (server-everything)…');
    upstream = await upstreamStarting;
    mcpTargets = { everything: everythingTarget(upstream!.url) };
  } else if (upstreamOption) {
    mcpTargets = upstreamOption;
  }

  // The approval state machine as CDK synthesizes it (cached on disk; see step-functions.ts).
  const stepFunctions = await startLocalStepFunctions({
    host,
    ...(persistent ? { stateDir: join(dataDir, 'step-functions') } : {}),
  });
  const outbox = createOutbox(log);
  // The execute function, as the API function reaches it on AWS (Lambda Invoke): allowed writes
  // and allowed AWS calls run there, never in the API function.
  const lambda = await startLocalLambda({
    host,
    functions: {
      [EXECUTE_FUNCTION]: async (event) => {
        const { handler } = await import('../../lambdas/handlers/execute.js');
        return handler(event as Parameters<typeof handler>[0]);
      },
    },
  });

  // The API function's Data API access as its IAM policy has it: the readers' secrets only (an
  // endpoint of the Data API twin that refuses every other secret), behind the same faults.
  const rdsDataUrl = faults?.endpoint('rds-data', dataApi.url) ?? dataApi.url;
  const secretGate = await dataApi.restrictedEndpoint(
    Object.values(parseConfig(demoConfig()).targets).flatMap((t) =>
      t.kind === 'sql' ? [t.secrets.read, ...(t.secrets.maskedRead ? [t.secrets.maskedRead] : [])] : [],
    ),
  );
  const apiRdsDataUrl = (await faults?.alsoProxy('rds-data', secretGate.url)) ?? secretGate.url;

  const env: Record<string, string> = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local-twin',
    AWS_SECRET_ACCESS_KEY: 'local-twin',
    AWS_ENDPOINT_URL_DYNAMODB: faults?.endpoint('dynamodb', dynamo.endpoint) ?? dynamo.endpoint,
    AWS_ENDPOINT_URL_RDS_DATA: rdsDataUrl,
    WARDEN_API_ENDPOINT_URL_RDS_DATA: apiRdsDataUrl,
    WARDEN_CONFIG: JSON.stringify(
      withTargets(
        demoConfig({
          approvalWindowSeconds: options.approvalWindowSeconds,
          requiredApprovals: options.requiredApprovals,
        }),
        mcpTargets,
      ),
    ),
    OIDC_ISSUER: issuer,
    OIDC_AUDIENCE: 'warden',
    OIDC_JWKS_URI: idp.jwksUri,
    OIDC_SCOPES: 'openid warden',
    GROUPS_CLAIM: 'groups',
    // The dev IdP's owned agent (agent-erin) names its owner in this claim (docs/approvals.md).
    AGENT_OWNER_CLAIM: 'warden_owner',
    PUBLIC_URL: url,
    AWS_ENDPOINT_URL_SFN: (await faults?.proxy('sfn', stepFunctions.url)) ?? stepFunctions.url,
    STATE_MACHINE_ARN: stepFunctions.stateMachineArn,
    WARDEN_OUTBOX_URL: `${url}/dev/outbox`,
    EXECUTE_FUNCTION_NAME: EXECUTE_FUNCTION,
    WARDEN_EXECUTE_ENDPOINT_URL: lambda.url,
    MASKING_HASH_KEY: persistentSecret(dataDir, 'maskingHashKey'),
    // Cookies, CSRF tokens and links: GenerateMac/VerifyMac on the twin's KMS, as on AWS.
    HMAC_KEY_ID: kms.arnOf(HMAC_KEY_ID),
    // The KMS key that seals exact statements waiting for approval (GenerateDataKey / Decrypt).
    SEAL_KEY_ID: kms.arnOf(SEAL_KEY_ID),
    // The KMS key policy sets are signed with at push (functions serve no set without its
    // signature, and may only verify it: lambdas/core/policy-signature.ts).
    AWS_ENDPOINT_URL_KMS: kms.url,
    POLICY_MAC_KEY_ID: policyKeyArn,
    OIDC_APPROVAL_CLIENT_ID: idp.clients.approval.clientId,
    OIDC_APPROVAL_CLIENT_SECRET: idp.clients.approval.clientSecret,
    // `warden login --url <twin>`: the public native client, named in the RFC 9728 metadata.
    OIDC_CLI_CLIENT_ID: idp.clients.login.clientId,
    POLICY_TTL_MS: '2000',
    ...aws.env,
    ...(faults && aws.env.AWS_ENDPOINT_URL_STS
      ? { AWS_ENDPOINT_URL_STS: await faults.proxy('sts', aws.env.AWS_ENDPOINT_URL_STS) }
      : {}),
    // Governed AWS calls (the target account's DynamoDB, through the session policy's enforcer).
    ...(faults && aws.env.WARDEN_AWS_ENDPOINT_URL_DYNAMODB
      ? {
          WARDEN_AWS_ENDPOINT_URL_DYNAMODB: await faults.proxy(
            'target-dynamodb',
            aws.env.WARDEN_AWS_ENDPOINT_URL_DYNAMODB,
          ),
        }
      : {}),
  };
  for (const def of ALL_TABLES) env[tableEnvVar(def)] = tableNames[def.logicalName];
  Object.assign(process.env, env);

  // The repo's policy files are the demo's source of truth: validated, then pushed like `policy push`
  // when the store has no policy yet or the files changed since they were last pushed. Otherwise the
  // active set stays (it may be one a user pushed with `warden policy push`).
  const sources = [...loadPolicyFiles(POLICY_DIR), ...(options.extraPolicies ?? [])];
  const policyFilesHash = createHash('sha256').update(JSON.stringify(sources)).digest('hex');
  const policyStore = new DynamoPolicyStore({
    client: createDocumentClient(ddb),
    tableName: tableNames.Policies,
  });
  const previousSet = await policyStore.getActive();
  // The twin pushes as the operator, as `warden policy push` does.
  const operatorKms = new KMSClient({
    endpoint: kms.url,
    region: 'us-east-1',
    credentials: { accessKeyId: OPERATOR_ACCESS_KEY, secretAccessKey: OPERATOR_ACCESS_KEY },
  });
  const policyMac = createKmsSigner({ keyId: policyKeyArn, client: operatorKms });
  // A set stored before sets were signed (or written around push) would not be served: push again.
  const previousSigned = previousSet ? await verifyPolicySet(policyMac, previousSet) : false;
  if (twinState.policyFilesHash !== policyFilesHash || !previousSet || !previousSigned) {
    const version = `local-${Date.now()}`;
    const engine = validatePolicySources(sources, version);
    const at = new Date().toISOString();
    // Recorded as `warden policy push` records a push: the active pointer and its policy_pushed
    // event in one transaction (functions log a set they find no such event for).
    const trail = new DynamoTrailStore({
      client: createDocumentClient(ddb),
      tableName: tableNames.Audit,
      ttlDays: 400,
    });
    await policyStore.pushWithTrail(
      await signPolicySet(policyMac, {
        version,
        policies: encodePolicySources(sources, engine),
        updatedAt: at,
        updatedBy: 'local-twin',
      }),
      previousSet?.version ?? null,
      trail,
      POLICY_SESSION,
      [
        policyPushedEvent({
          version,
          previousVersion: previousSet?.version ?? null,
          at,
          principal: 'local-twin',
          principalName: 'local-twin',
          policyIds: engine.policyIds,
        }),
      ],
    );
    twinState.policyFilesHash = policyFilesHash;
    if (persistent) writeTwinState(dataDir, twinState);
  }

  // The IdP answers before the handler's cold start, which fetches its JWKS.
  let api: typeof import('../../lambdas/handlers/api.js') | undefined = undefined;
  app = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (outbox.handle(req, res)) return;
    if (path === '/oidc' || path.startsWith('/oidc/')) {
      idp.handler(req, res);
      return;
    }
    if (!api) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { code: 'starting', message: 'Warden is starting' } }));
      return;
    }
    const handler = api.handler;
    void (async () => {
      const body = await readBody(req);
      if (body === 'too_large') {
        res.writeHead(413, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { code: 'payload_too_large', message: 'request body over 10 MiB' } }),
        );
        return;
      }
      const event = toEvent(req, body, `${host}:${actualPort}`);
      const invoke = () => handler(event, lambdaContext('warden-api'));
      const result = faults ? await faults.invoke(req, res, invoke) : await invoke();
      if (res.destroyed) return;
      writeResult(res, result);
    })().catch((error: unknown) => {
      logJson({
        level: 'error',
        msg: 'local twin: unhandled error',
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal_error', message: 'internal error' } }));
    });
  };

  log('loading the API handler (cold start)…');
  await apiModules;
  api = await import('../../lambdas/handlers/api.js');
  // What the cold start leaves running (the masking checks) ends before the twin says it is up.
  await api.settled;
  let instances = 1;
  // Approvals that were waiting when the twin last stopped wait again (or expire, if their window
  // passed meanwhile); the notify and execute functions can run now that the environment is set.
  // Not awaited: the definition may still be synthesizing on a first start.
  stepFunctions.resume().then(
    (n) => n > 0 && log(`resumed ${n} approval workflow${n === 1 ? '' : 's'} from the last run`),
    () => undefined,
  );

  const twin: Twin = {
    url,
    port: actualPort,
    issuer,
    idp,
    dynamoEndpoint: dynamo.endpoint,
    dynamoMode,
    dataApiUrl: dataApi.url,
    statementLog: dataApi.statementLog,
    ...(faults ? { faults } : {}),
    db,
    dataDir,
    tableNames,
    aws,
    auditLakeDir,
    exportAudit: () => auditExports.exportNow(),
    onStoreCall: (listener) => dynamo.onCall(listener),
    async restartApi() {
      instances += 1;
      // Another URL is another module instance, so the handler's top-level init runs again.
      // The function starts with the environment the twin gave it, whatever the process did since
      // (a test may point a CLI elsewhere); the process gets its own back once the init has read it.
      const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
      Object.assign(process.env, env);
      const url = `../../lambdas/handlers/api.js?instance=${instances}`;
      let next: typeof import('../../lambdas/handlers/api.js');
      try {
        next = (await import(/* @vite-ignore */ url)) as typeof import('../../lambdas/handlers/api.js');
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
      await next.settled;
      api = next;
    },
    outbox: outbox.messages,
    stepFunctions,
    lambda,
    secretGate,
    async close() {
      await auditExports.stop();
      idp.flush();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await faults?.close();
      await stepFunctions.close();
      await lambda.close();
      await secretGate.close();
      await dataApi.close();
      rmSync(endpointsFile, { force: true });
      await aws.close();
      operatorKms.destroy();
      await kms.close();
      await dynamo.close();
      await db.close();
      await upstream?.close();
      unlock();
    },
  };
  // Once, whoever asks first (a crashed DynamoDB thread closes the twin; its owner may close it too).
  const closeOnce = twin.close.bind(twin);
  let closing: Promise<void> | undefined;
  twin.close = () => (closing ??= closeOnce());
  started.twin = twin;
  if (started.crashed) {
    await twin.close();
    throw new Error(`the twin's DynamoDB thread ended while the twin started: ${started.crashed.message}`);
  }
  return twin;
}

/** Loads what the API handler imports (not the handler: it reads the environment when loaded). */
function preloadApiModules(): Promise<unknown> {
  const loading = Promise.all([
    import('../../lambdas/handlers/runtime.js'),
    import('../../lambdas/handlers/routes/core.js'),
    import('../../lambdas/handlers/routes/approvals.js'),
    import('../../lambdas/handlers/routes/approve-page.js'),
    import('../../lambdas/handlers/routes/sessions.js'),
    import('../../lambdas/handlers/routes/mcp.js'),
    import('../../lambdas/handlers/routes/mcp-tools.js'),
    import('../../lambdas/handlers/routes/aws.js'),
  ]);
  // A failure shows when the handler itself is imported.
  return loading.catch(() => undefined);
}

function withTargets(config: WardenConfigInput, extra: Record<string, McpTargetInput>): WardenConfigInput {
  return { ...config, targets: { ...config.targets, ...extra } };
}

function demoConfigArn(): string {
  const cfg = demoConfig().targets.demo;
  return cfg.kind === 'sql' ? cfg.resourceArn : '';
}
