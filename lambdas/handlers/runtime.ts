/**
 * Wiring shared by every Lambda entry point: configuration read once, clients created once,
 * verifier hydrated and WebAssembly compiled during cold start — never per request.
 * The local twin runs this same code; only the endpoints in the environment differ.
 */
import { randomBytes } from 'node:crypto';
import { createAwsExecutor } from '../adapters/aws-executor.js';
import { audienceClaimFromEnv, createTokenVerifier, jwksMaxAgeFromEnv } from '../adapters/jwt-verifier.js';
import { oidcLoginFromEnv, type OidcLoginClient } from '../adapters/oidc-client.js';
import { createDbMaskingGuard, dbMaskingRecheckFromEnv } from '../adapters/db-masking.js';
import { createRdsDataExecutor, defaultRdsDataClient } from '../adapters/rds-data.js';
import { lambdaDispatch } from '../adapters/execute-dispatch.js';
import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { requestPathClient } from '../adapters/sdk-client.js';
import { DynamoPolicyStore, DynamoRequestStore } from '../adapters/request-store.js';
import { DynamoTrailStore } from '../adapters/trail-store.js';
import { approvalWiringFromEnv, type ApprovalWiring } from '../adapters/approval-wiring.js';
import { policyMacFromEnv, signerFromEnv, type Signer } from '../adapters/signing.js';
import { maskingKeyFromEnv } from '../adapters/masking-key.js';
import { sealerFromEnv } from '../adapters/sealing.js';
import { classifySql, initSqlClassifier } from '../core/classify/sql.js';
import {
  configFromEnv,
  type McpTargetConfig,
  type SqlTargetConfig,
  type WardenConfig,
} from '../core/config.js';
import { createMasker, type Masker } from '../core/masking/index.js';
import { auditActiveSet, PolicyProvider } from '../core/policy-provider.js';
import { verifyPolicySet } from '../core/policy-signature.js';
import { systemClock } from '../core/ports.js';
import type { AwsExecutor } from '../core/aws-requests.js';
import type { ToolPinStore, UpstreamMcp } from '../core/mcp-upstream.js';
import { DynamoToolPinStore } from '../adapters/tool-pin-store.js';
import type { RequestDeps } from '../core/requests.js';
import type { TrailReader } from '../core/sessions.js';
import type { TokenVerifier } from '../middleware/auth.js';
import { logJson } from '../middleware/http.js';
import { warmUp } from './warm-up.js';

export interface Runtime extends RequestDeps, ApprovalWiring {
  readonly verifier: TokenVerifier;
  readonly publicUrl: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  /** The session trail, read side (auditors' routes). */
  readonly trailReader?: TrailReader;
  /** Cookies and CSRF tokens of the approval page (KMS HMAC in AWS). */
  readonly signer?: Signer;
  /** The approval page's OIDC client (authorization code + PKCE). */
  readonly approvalLogin?: OidcLoginClient;
  /** STS AssumeRole + the AWS SDK clients for governed AWS calls (loaded on first use). */
  readonly aws: AwsExecutor;
  /** Upstream MCP servers and their pinned tool definitions (when MCP targets are configured). */
  readonly upstream?: UpstreamMcp;
  readonly pins?: ToolPinStore;
  /**
   * Resolves when the cold start's work that requests do not wait for (the database masking
   * checks the warm-up starts) has ended, whatever its outcome. The twin waits for it, so tests
   * start from a settled instance; on Lambda nothing waits for it.
   */
  readonly settled: Promise<void>;
}

/** When each cold-start phase of the last createRuntime() ended, in ms from its start (bench/cold-start.ts). */
export const COLD_START_PHASES: Record<string, number> = {};

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function mcpTargets(config: WardenConfig): Record<string, McpTargetConfig> {
  const out: Record<string, McpTargetConfig> = {};
  for (const [name, t] of Object.entries(config.targets)) if (t.kind === 'mcp') out[name] = t;
  return out;
}

/** The MCP client SDK is loaded on the first upstream call, off the SQL path's cold start. */
function lazyUpstream(targets: Record<string, McpTargetConfig>, env: NodeJS.ProcessEnv): UpstreamMcp {
  let real: Promise<UpstreamMcp> | undefined;
  const load = () =>
    (real ??= import('../adapters/mcp-upstream.js').then((m) => m.createUpstreamMcp({ targets, env })));
  return {
    listTools: async (target) => (await load()).listTools(target),
    callTool: async (target, tool, args, options) => (await load()).callTool(target, tool, args, options),
  };
}

/** The API function's AWS executor: checks calls against the SDK's model, never assumes a role. */
function checkOnly(real: AwsExecutor): AwsExecutor {
  return {
    check: (service, action, input) => real.check(service, action, input),
    call: async () => {
      throw new Error('this function does not assume target roles; AWS calls run in the execute function');
    },
  };
}

function sqlTargets(config: WardenConfig): Record<string, SqlTargetConfig> {
  const out: Record<string, SqlTargetConfig> = {};
  for (const [name, t] of Object.entries(config.targets)) if (t.kind === 'sql') out[name] = t;
  return out;
}

export interface RuntimeOptions {
  /**
   * Whether this function applies column rules, whose `hash` strategy needs the masking key. The
   * notify function masks free text with the detectors only (stored statements are already in their
   * shown form), so it is not given the key: its maskers get a random one that never leaves the process.
   * @default true
   */
  readonly hashing?: boolean;
  /**
   * `api`: the internet-facing function. It holds only what a read and a decision need: reads run
   * here (read-only executor, the readers' secrets), allowed writes and allowed AWS calls run in the
   * execute function (EXECUTE_FUNCTION_NAME, required), which checks them again. Otherwise this
   * function executes what it is handed (the execute function) or nothing (notify). @default 'execute'
   */
  readonly role?: 'api' | 'execute';
  /**
   * Whether this function seals or opens exact statements (api: seals and opens for requesters and
   * approvers; execute: opens to run). Notify never does, and is not given the key. @default true
   */
  readonly sealing?: boolean;
  /**
   * Whether init also makes the first calls into the SQL parser and Cedar (a throwaway statement
   * and decisions, lambdas/handlers/warm-up.ts), so the first request does not pay them. The API
   * function does; the others start rarely enough not to. @default false
   */
  readonly warmUp?: boolean;
}

/** How long after a policy set is loaded the function looks for its policy_pushed event. */
const POLICY_AUDIT_DELAY_MS = 1_000;

export async function createRuntime(
  env: NodeJS.ProcessEnv = process.env,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const began = performance.now();
  COLD_START_PHASES.startedAt = began;
  const config = configFromEnv(env);
  const issuer = required(env, 'OIDC_ISSUER');
  const audience = required(env, 'OIDC_AUDIENCE');
  const jwksMaxAge = jwksMaxAgeFromEnv(env);
  const maskingRecheck = dbMaskingRecheckFromEnv(env);
  const verifier = createTokenVerifier({
    issuer,
    audience: audience.split(',').map((s) => s.trim()),
    audienceClaim: audienceClaimFromEnv(env),
    ...(env.OIDC_JWKS_URI ? { jwksUri: env.OIDC_JWKS_URI } : {}),
    ...(jwksMaxAge !== undefined ? { jwksMaxAgeSeconds: jwksMaxAge } : {}),
    // The previous key set stays in use; the next verification after 30 s tries again.
    onJwksRefreshError: (error) =>
      logJson({ level: 'warn', msg: 'refetching the IdP signing keys failed', error: String(error) }),
    groupsClaim: env.GROUPS_CLAIM ?? 'groups',
    // Agents acting for people when the IdP has no token exchange (docs/approvals.md).
    ...(env.AGENT_OWNER_CLAIM ? { ownerClaim: env.AGENT_OWNER_CLAIM } : {}),
    ...(env.AGENT_CLIENT_IDS
      ? {
          agentClientIds: env.AGENT_CLIENT_IDS.split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        }
      : {}),
  });
  const trail = new DynamoTrailStore({ ttlDays: config.auditTtlDays, log: logJson });
  // A request record and its trail events are one write (one TransactWriteItems).
  const requests = new DynamoRequestStore({ trail });
  // No policy key, no start: a set written around `warden policy push` must not be served.
  const policyMac = policyMacFromEnv(env);
  const policyStore = new DynamoPolicyStore();
  const policies = new PolicyProvider(
    policyStore,
    Number(env.POLICY_TTL_MS ?? 30_000),
    Date.now,
    // Off the load's path and a second later, so neither the cold start nor the first request
    // waits for it or shares its connections: a set made active around `warden policy push` is
    // logged (and alarmed on).
    (set) => {
      const timer = setTimeout(
        () =>
          void auditActiveSet(set, trail, logJson, {
            activeVersion: async () => (await policyStore.getActive())?.version,
            // An older signed set written back is not served once the trail shows it.
            onReplayed: (replayed) => policies.reject(replayed),
          }).catch((error: unknown) =>
            logJson({
              level: 'warn',
              msg: 'could not look for the policy set in the trail',
              error: String(error),
            }),
          ),
        POLICY_AUDIT_DELAY_MS,
      );
      timer.unref?.();
    },
    (set) => verifyPolicySet(policyMac, set),
  );
  const dispatchTo = options.role === 'api' ? required(env, 'EXECUTE_FUNCTION_NAME') : undefined;
  // The local twin gives the API function its own Data API endpoint, which refuses the write
  // secrets as the function's IAM policy does on AWS (restrictedEndpoint in lib/local/data-api.ts).
  const apiDataApi =
    dispatchTo && env.WARDEN_API_ENDPOINT_URL_RDS_DATA
      ? requestPathClient(
          new RDSDataClient({
            maxAttempts: 1,
            cacheMiddleware: true,
            endpoint: env.WARDEN_API_ENDPOINT_URL_RDS_DATA,
          }),
        )
      : undefined;
  // One Data API client (one connection pool) for statements and the masking check.
  const dataApi = apiDataApi ?? defaultRdsDataClient;
  const sql = createRdsDataExecutor({
    targets: sqlTargets(config),
    readOnly: dispatchTo !== undefined,
    client: dataApi,
  });
  const upstreamTargets = mcpTargets(config);
  const hasMcp = Object.keys(upstreamTargets).length > 0;

  // Cold start: fetch the JWKS, compile the parser's WebAssembly, load the active policy set, read
  // the masking key. No key, no start: a derived or default key would make every hash guessable.
  // Each phase's end is noted (ms since createRuntime began) for the cold-start bench.
  const phase = <T>(name: string, work: Promise<T>): Promise<T> =>
    work.finally(() => (COLD_START_PHASES[name] = Math.round(performance.now() - began)));
  COLD_START_PHASES['config and clients'] = Math.round(performance.now() - began);
  const parser = initSqlClassifier();
  const policySet = policies.engine().then(
    () => undefined,
    (error: unknown) => {
      logJson({ level: 'warn', msg: 'policy load failed at cold start', error: String(error) });
    },
  );
  // Masked principals are served only once the database proves it masks (docs/masking.md).
  // The API function proves only the users it runs as (the readers); execute proves them all.
  const dbMasking = createDbMaskingGuard({
    config,
    log: logJson,
    client: dataApi,
    ...(dispatchTo ? { users: ['read', 'maskedRead'] as const } : {}),
    ...(maskingRecheck !== undefined ? { recheckSeconds: maskingRecheck } : {}),
  });
  // With the warm-up, each masking target's check starts now, its round trips overlapping the
  // WebAssembly compiles, instead of on the first masked request. Its outcome is kept exactly as
  // if that request had started it (a failure for 30 s, an unreachable database not at all).
  const maskingChecked = options.warmUp
    ? Promise.all(
        Object.entries(config.targets)
          .filter(([, t]) => t.kind === 'sql' && t.masking.rules.length > 0)
          .map(([name]) => dbMasking.ensure(name).catch(() => undefined)),
      )
    : undefined;
  // Not waited for: noted for the cold-start bench when it is done.
  if (maskingChecked) void phase('database masking checks (not waited for)', maskingChecked);
  const [key] = await Promise.all([
    phase(
      'masking key read',
      options.hashing === false ? Promise.resolve(randomBytes(32)) : maskingKeyFromEnv(env),
    ),
    phase(
      'JWKS fetched',
      verifier.hydrate().catch((error: unknown) => {
        // An IdP that is briefly unreachable must not keep the function from starting; verification
        // fetches the JWKS on first use and fails closed (503, nothing runs) until it can.
        logJson({ level: 'warn', msg: 'JWKS hydration failed at cold start', error: String(error) });
      }),
    ),
    phase('SQL parser compiled', parser),
    phase('policy set loaded (Cedar)', policySet),
    ...(options.warmUp
      ? [
          // The first calls into both WebAssembly modules, made here instead of by the first request.
          phase(
            'parser and Cedar warmed up',
            Promise.all([parser, policySet]).then(() =>
              warmUp({ config, policies, classifySql }).catch((error: unknown) => {
                logJson({ level: 'warn', msg: 'warm-up failed at cold start', error: String(error) });
              }),
            ),
          ),
        ]
      : []),
  ]);
  const maskers = new Map<string, Masker>();
  for (const [name, target] of Object.entries(config.targets)) {
    maskers.set(
      name,
      createMasker({
        rules: target.masking.rules,
        hashKey: key,
        phoneRegion: target.masking.phoneRegion,
      }),
    );
  }
  const fallback = createMasker({ hashKey: key });
  // No sealing key, no start: a request waiting for approval could not keep its exact form apart.
  const sealer = options.sealing === false ? undefined : sealerFromEnv(env);

  return {
    settled: maskingChecked ? maskingChecked.then(() => undefined) : Promise.resolve(),
    config,
    policies,
    requests,
    sql,
    dbMasking,
    classifySql,
    maskerFor: (target) => maskers.get(target) ?? fallback,
    ...(sealer ? { sealer } : {}),
    clock: systemClock,
    log: logJson,
    trail,
    trailReader: trail,
    verifier,
    publicUrl: env.PUBLIC_URL,
    issuer,
    audience,
    signer: signerFromEnv(env),
    approvalLogin: oidcLoginFromEnv(env, issuer),
    aws: dispatchTo ? checkOnly(createAwsExecutor({ env })) : createAwsExecutor({ env }),
    ...(dispatchTo
      ? {
          dispatch: lambdaDispatch({
            functionName: dispatchTo,
            ...(env.WARDEN_EXECUTE_ENDPOINT_URL ? { endpoint: env.WARDEN_EXECUTE_ENDPOINT_URL } : {}),
          }),
        }
      : {}),
    ...(hasMcp ? { upstream: lazyUpstream(upstreamTargets, env), pins: new DynamoToolPinStore() } : {}),
    ...approvalWiringFromEnv(env),
  };
}
