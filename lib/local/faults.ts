/**
 * Fault injection for the local twin: an HTTP proxy in front of each AWS-protocol endpoint the
 * handlers call (DynamoDB, the RDS Data API, Step Functions / STS when the twin has them, and the
 * AWS target's DynamoDB that governed AWS calls run against), plus
 * a "Lambda killed mid-request" switch on the API handler's invocations.
 *
 * Faults are answered in each service's own wire shape, so the production adapters and the SDK's
 * retry logic see exactly what AWS would send them:
 * - `throttle`: 400 with the service's throttling error (`ProvisionedThroughputExceededException`
 *   for DynamoDB data calls, `ThrottlingException` for the JSON services, `Throttling` for STS).
 * - `error`: a 5xx (`InternalServerError`, `ServiceUnavailableError`, …), or any `errorType`/`status`.
 * - `timeout`: the request is held for `holdMs`, never forwarded, then its socket is dropped.
 * - `lost-response`: the request IS forwarded (the write happens, the statement runs) and the
 *   answer is lost on the way back: the hardest case for "recorded exactly once".
 *
 * A killed invocation is modelled on what a real kill does to the outside world: at a random
 * moment the client's socket is closed and every later outgoing HTTP call of that invocation is
 * destroyed before it leaves the process. The invocation's context is tracked with
 * AsyncLocalStorage and outgoing calls are seen through Node's `http.client.request.start`
 * diagnostics channel, so no SDK or handler code is touched. (CPU work of the dead invocation still
 * runs to its end; only its effects are cut, which is what the invariants are about.)
 *
 * Configuration: `WARDEN_FAULTS` (JSON) or `startLocalTwin({ faults })`; the layer can be
 * reconfigured at run time (`configure`) so one twin serves several scenarios.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { keepAliveWithMargin } from './listen.js';

/**
 * `target-dynamodb` is the governed AWS target's DynamoDB (the calls Warden runs for an agent, with
 * the session it assumed), apart from `dynamodb`, Warden's own tables.
 */
export const FAULT_SERVICES = ['dynamodb', 'rds-data', 'sfn', 'sts', 'target-dynamodb'] as const;
export type FaultService = (typeof FAULT_SERVICES)[number];
export type FaultKind = 'throttle' | 'error' | 'timeout' | 'lost-response';

const ruleSchema = z
  .object({
    service: z.enum([...FAULT_SERVICES, '*']),
    /** API operation names (`PutItem`, `ExecuteStatement`, `StartExecution`, `AssumeRole`). */
    operation: z.union([z.string(), z.array(z.string())]).optional(),
    /** DynamoDB table, logical (`Requests`) or physical name. */
    table: z.string().optional(),
    /** Only requests whose raw body contains this text (e.g. `"S":"executed"` for an outcome write). */
    bodyIncludes: z.string().optional(),
    fault: z.enum(['throttle', 'error', 'timeout', 'lost-response']),
    probability: z.number().min(0).max(1),
    /** `timeout`: how long the request is held before its socket is dropped. @default 1000 */
    holdMs: z.number().int().min(0).max(120_000).optional(),
    /** `throttle`/`error`: the error type answered instead of the service's default. */
    errorType: z.string().optional(),
    /** `error`: the HTTP status answered instead of the default. */
    status: z.number().int().min(400).max(599).optional(),
    /** `error` on rds-data: the service's message (e.g. one naming an ARN, as the real one does). */
    message: z.string().max(2000).optional(),
    /** Stop injecting this rule after this many hits. */
    maxCount: z.number().int().min(0).optional(),
  })
  .strict();

const killSchema = z
  .object({
    probability: z.number().min(0).max(1),
    /** The kill lands at a uniformly random moment in [0, maxDelayMs] after the invocation starts. */
    maxDelayMs: z.number().int().min(0).max(60_000),
    /** Only invocations whose path starts with one of these. @default every path */
    paths: z.array(z.string()).optional(),
    maxCount: z.number().int().min(0).optional(),
  })
  .strict();

export const faultConfigSchema = z
  .object({
    /** PRNG seed, so a faulty run can be replayed. @default random */
    seed: z.number().int().optional(),
    rules: z.array(ruleSchema).default([]),
    kill: killSchema.optional(),
  })
  .strict();

export type FaultRule = z.infer<typeof ruleSchema>;
export type KillConfig = z.infer<typeof killSchema>;
export type FaultConfig = z.input<typeof faultConfigSchema>;

/** Parses WARDEN_FAULTS (or an option); undefined when fault injection is off. */
export function parseFaultConfig(input: string | FaultConfig | undefined): FaultConfig | undefined {
  if (input === undefined || input === '') return undefined;
  const raw: unknown = typeof input === 'string' ? JSON.parse(input) : input;
  const parsed = faultConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`invalid fault configuration: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  return parsed.data;
}

export interface FaultStats {
  /** `service operation fault` → how many times it was injected. */
  readonly injected: Record<string, number>;
  /** Invocations killed mid-request. */
  readonly killed: number;
  /** Calls that went through untouched (lost-response ones count as injected). */
  readonly forwarded: number;
}

interface InvocationState {
  killed: boolean;
}

/** mulberry32: reproducible faults for a given seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DATA_API_OPERATIONS: Record<string, string> = {
  '/Execute': 'ExecuteStatement',
  '/BatchExecute': 'BatchExecuteStatement',
  '/BeginTransaction': 'BeginTransaction',
  '/CommitTransaction': 'CommitTransaction',
  '/RollbackTransaction': 'RollbackTransaction',
};

interface CallInfo {
  readonly operation: string;
  readonly tables: readonly string[];
}

function describeCall(service: FaultService, req: IncomingMessage, body: string): CallInfo {
  const target = String(req.headers['x-amz-target'] ?? '');
  switch (service) {
    case 'dynamodb':
    case 'target-dynamodb': {
      const operation = target.split('.')[1] ?? '';
      return { operation, tables: dynamoTables(body) };
    }
    case 'rds-data':
      return {
        operation: DATA_API_OPERATIONS[new URL(req.url ?? '/', 'http://x').pathname] ?? '',
        tables: [],
      };
    case 'sfn':
      return { operation: target.split('.')[1] ?? '', tables: [] };
    case 'sts':
      return { operation: new URLSearchParams(body).get('Action') ?? '', tables: [] };
  }
}

function dynamoTables(body: string): string[] {
  try {
    const json = JSON.parse(body) as Record<string, any>;
    const names = new Set<string>();
    if (typeof json.TableName === 'string') names.add(json.TableName);
    for (const name of Object.keys(json.RequestItems ?? {})) names.add(name);
    for (const item of (json.TransactItems ?? []) as Record<string, { TableName?: string }>[]) {
      for (const part of Object.values(item)) if (part?.TableName) names.add(part.TableName);
    }
    return [...names];
  } catch {
    return [];
  }
}

/** The error a service answers, in its protocol: status, headers and body. */
function faultAnswer(
  service: FaultService,
  rule: FaultRule,
  operation: string,
): { status: number; headers: Record<string, string>; body: string } {
  const requestId = randomBytes(16).toString('hex');
  const throttle = rule.fault === 'throttle';
  if (service === 'sts') {
    const code = rule.errorType ?? (throttle ? 'Throttling' : 'ServiceUnavailable');
    const status = rule.status ?? (throttle ? 400 : 503);
    return {
      status,
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
      body:
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>` +
        `<Type>${status < 500 ? 'Sender' : 'Receiver'}</Type><Code>${code}</Code>` +
        `<Message>${throttle ? 'Rate exceeded' : 'Service unavailable (injected fault)'}</Message>` +
        `</Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
    };
  }
  let type: string;
  let status: number;
  let message: string;
  if (service === 'dynamodb' || service === 'target-dynamodb') {
    const dataPlane = !/Table|Backup|TimeToLive|Describe|List/.test(operation);
    type =
      rule.errorType ??
      (throttle
        ? dataPlane
          ? 'ProvisionedThroughputExceededException'
          : 'ThrottlingException'
        : 'InternalServerError');
    status = rule.status ?? (throttle ? 400 : 500);
    message = throttle
      ? 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.'
      : 'Internal server error';
    // awsJson1_0: the type travels in both the header and `__type`, namespaced in the body.
    return {
      status,
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': requestId,
        'x-amzn-errortype': type,
      },
      body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }),
    };
  }
  if (service === 'rds-data') {
    type = rule.errorType ?? (throttle ? 'ThrottlingException' : 'ServiceUnavailableError');
    status =
      rule.status ??
      (throttle
        ? 400
        : type === 'InternalServerErrorException'
          ? 500
          : type === 'DatabaseUnavailableException'
            ? 504
            : type === 'StatementTimeoutException'
              ? 400
              : 503);
    message = throttle ? 'Rate exceeded' : (rule.message ?? `${type} (injected fault)`);
    return {
      status,
      headers: {
        'content-type': 'application/json',
        'x-amzn-requestid': requestId,
        'x-amzn-errortype': type,
      },
      body: JSON.stringify({ message }),
    };
  }
  // Step Functions: awsJson1_0.
  type = rule.errorType ?? (throttle ? 'ThrottlingException' : 'ServiceUnavailable');
  status = rule.status ?? (throttle ? 400 : 503);
  return {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': requestId,
      'x-amzn-errortype': type,
    },
    body: JSON.stringify({ __type: type, message: throttle ? 'Rate exceeded' : `${type} (injected fault)` }),
  };
}

interface Proxy {
  readonly service: FaultService;
  readonly url: string;
  readonly server: http.Server;
}

export class FaultLayer {
  private rules: FaultRule[] = [];
  private kill: KillConfig | undefined;
  private random: () => number = Math.random;
  private readonly hits = new Map<FaultRule | KillConfig, number>();
  private readonly injected = new Map<string, number>();
  private killed = 0;
  private forwarded = 0;
  private running = 0;
  private readonly proxies = new Map<FaultService, Proxy>();
  private readonly extra: Proxy[] = [];
  private readonly held = new Set<ServerResponse>();
  private readonly invocations = new AsyncLocalStorage<InvocationState>();
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly onRequestStart = (message: unknown): void => {
    const state = this.invocations.getStore();
    if (state?.killed) (message as { request: ClientRequest }).request.destroy(new Error('Lambda killed'));
  };

  private constructor(
    config: FaultConfig,
    private readonly tableNames: Readonly<Record<string, string>>,
  ) {
    this.configure(config);
    diagnostics.subscribe('http.client.request.start', this.onRequestStart);
  }

  /**
   * Starts one proxy per upstream endpoint given (service → the real endpoint URL).
   * `tableNames` maps logical table names to physical ones, for `table` in rules.
   */
  static async start(
    config: FaultConfig,
    upstreams: Partial<Record<FaultService, string>>,
    tableNames: Readonly<Record<string, string>> = {},
  ): Promise<FaultLayer> {
    const layer = new FaultLayer(config, tableNames);
    for (const [service, upstream] of Object.entries(upstreams) as [FaultService, string][]) {
      if (upstream) await layer.startProxy(service, upstream);
    }
    return layer;
  }

  /** Replaces the rules (and kill switch); counters are kept. */
  configure(input: FaultConfig): void {
    const config = faultConfigSchema.parse(input);
    this.rules = config.rules;
    this.kill = config.kill;
    this.hits.clear();
    this.random = config.seed === undefined ? Math.random : prng(config.seed);
  }

  /**
   * Puts a proxy in front of an endpoint started after the layer (e.g. the Step Functions or STS
   * twin) and answers the URL the handlers should use.
   */
  async proxy(service: FaultService, upstream: string): Promise<string> {
    if (!this.proxies.has(service)) await this.startProxy(service, upstream);
    return this.proxies.get(service)!.url;
  }

  /**
   * A further proxy for `service`, with the same rules, in front of another endpoint of it (the
   * Data API twin's restricted endpoint for the API function); answers its URL. Only when `service`
   * is proxied at all; otherwise answers `upstream` itself.
   */
  async alsoProxy(service: FaultService, upstream: string): Promise<string> {
    if (!this.proxies.has(service)) return upstream;
    const proxy = await this.listenProxy(service, upstream);
    this.extra.push(proxy);
    return proxy.url;
  }

  /** API invocations still running, killed ones included (a load run waits for 0 before checking). */
  inFlight(): number {
    return this.running;
  }

  /** The URL the handlers should use for `service`: the proxy's, or `fallback` when not proxied. */
  endpoint(service: FaultService, fallback: string): string {
    return this.proxies.get(service)?.url ?? fallback;
  }

  stats(): FaultStats {
    return { injected: Object.fromEntries(this.injected), killed: this.killed, forwarded: this.forwarded };
  }

  /**
   * Runs one API handler invocation; it may be killed at a random moment (the client's socket is
   * closed and every later outgoing call of the invocation is cut). Returns what the handler
   * returned; the caller checks `res.destroyed` before answering.
   */
  invoke<T>(req: IncomingMessage, res: ServerResponse, fn: () => Promise<T>): Promise<T> {
    const kill = this.kill;
    const path = (req.url ?? '/').split('?')[0];
    const eligible =
      kill !== undefined &&
      (kill.paths === undefined || kill.paths.some((p) => path.startsWith(p))) &&
      this.take(kill, kill.probability, kill.maxCount);
    const state: InvocationState = { killed: false };
    this.running += 1;
    const done = () => {
      this.running -= 1;
    };
    if (!eligible) return this.invocations.run(state, fn).finally(done);
    const timer = setTimeout(
      () => {
        state.killed = true;
        this.killed += 1;
        res.destroy();
      },
      Math.floor(this.random() * (kill.maxDelayMs + 1)),
    );
    return this.invocations.run(state, fn).finally(() => {
      clearTimeout(timer);
      done();
    });
  }

  async close(): Promise<void> {
    diagnostics.unsubscribe('http.client.request.start', this.onRequestStart);
    for (const res of this.held) res.destroy();
    this.held.clear();
    for (const proxy of [...this.proxies.values(), ...this.extra]) {
      proxy.server.closeAllConnections();
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
    }
    this.agent.destroy();
  }

  private take(key: FaultRule | KillConfig, probability: number, maxCount: number | undefined): boolean {
    if (probability <= 0) return false;
    const count = this.hits.get(key) ?? 0;
    if (maxCount !== undefined && count >= maxCount) return false;
    if (this.random() >= probability) return false;
    this.hits.set(key, count + 1);
    return true;
  }

  private matches(rule: FaultRule, service: FaultService, call: CallInfo, body: string): boolean {
    if (rule.service !== '*' && rule.service !== service) return false;
    if (rule.operation !== undefined) {
      const ops = typeof rule.operation === 'string' ? [rule.operation] : rule.operation;
      if (!ops.includes(call.operation)) return false;
    }
    if (rule.table !== undefined) {
      const physical = this.tableNames[rule.table] ?? rule.table;
      if (!call.tables.includes(physical)) return false;
    }
    if (rule.bodyIncludes !== undefined && !body.includes(rule.bodyIncludes)) return false;
    return true;
  }

  private count(service: FaultService, operation: string, fault: string): void {
    const key = `${service} ${operation || '?'} ${fault}`;
    this.injected.set(key, (this.injected.get(key) ?? 0) + 1);
  }

  private async startProxy(service: FaultService, upstream: string): Promise<void> {
    this.proxies.set(service, await this.listenProxy(service, upstream));
  }

  private async listenProxy(service: FaultService, upstream: string): Promise<Proxy> {
    const target = new URL(upstream);
    const server = http.createServer((req, res) => {
      void this.handle(service, target, req, res).catch(() => res.destroy());
    });
    keepAliveWithMargin(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return { service, url: `http://127.0.0.1:${port}`, server };
  }

  private async handle(
    service: FaultService,
    upstream: URL,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const body = raw.toString('utf8');
    const call = describeCall(service, req, body);
    const rule = this.rules.find(
      (r) => this.matches(r, service, call, body) && this.take(r, r.probability, r.maxCount),
    );
    if (rule) this.count(service, call.operation, rule.fault);
    else this.forwarded += 1;

    if (rule?.fault === 'throttle' || rule?.fault === 'error') {
      const answer = faultAnswer(service, rule, call.operation);
      res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
      res.end(answer.body);
      return;
    }
    if (rule?.fault === 'timeout') {
      this.held.add(res);
      await new Promise((resolve) => setTimeout(resolve, rule.holdMs ?? 1000));
      this.held.delete(res);
      res.destroy();
      return;
    }

    const answer = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
      (resolve, reject) => {
        // The target's enforcer checks SigV4 as AWS does, over the Host the client signed: a fault on
        // the network path leaves the request as it was sent.
        const headers =
          service === 'target-dynamodb' ? { ...req.headers } : { ...req.headers, host: upstream.host };
        const out = http.request(
          {
            agent: this.agent,
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers,
          },
          (upstreamRes) => {
            const parts: Buffer[] = [];
            upstreamRes.on('data', (c: Buffer) => parts.push(c));
            upstreamRes.on('end', () =>
              resolve({
                status: upstreamRes.statusCode ?? 502,
                headers: upstreamRes.headers,
                body: Buffer.concat(parts),
              }),
            );
            upstreamRes.on('error', reject);
          },
        );
        out.on('error', reject);
        out.end(raw);
      },
    );
    if (rule?.fault === 'lost-response') {
      // The upstream did the work; the caller never hears of it.
      res.destroy();
      return;
    }
    const headers = { ...answer.headers };
    delete headers['transfer-encoding'];
    delete headers.connection;
    headers['content-length'] = String(answer.body.length);
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }
}

/** Starts the layer when a configuration is given (option, else WARDEN_FAULTS); undefined otherwise. */
export async function faultLayerFromConfig(
  input: string | FaultConfig | undefined,
  upstreams: Partial<Record<FaultService, string>>,
  tableNames: Readonly<Record<string, string>> = {},
): Promise<FaultLayer | undefined> {
  const config = parseFaultConfig(input);
  return config ? FaultLayer.start(config, upstreams, tableNames) : undefined;
}
