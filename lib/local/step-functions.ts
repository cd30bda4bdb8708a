/**
 * The local twin's Step Functions: an HTTP endpoint speaking the service's wire protocol (AWS JSON
 * 1.0, `X-Amz-Target: AWSStepFunctions.<Operation>`), so the production adapter
 * (lambdas/adapters/step-functions.ts, @aws-sdk/client-sfn) works unchanged through
 * AWS_ENDPOINT_URL_SFN. It runs the approval state machine exactly as CDK synthesizes it
 * (synthApprovalDefinition), with the definition's Lambda ARNs mapped to the production handlers,
 * called in process.
 *
 * With `stateDir`, executions are checkpointed to one JSON file each under `<stateDir>/executions`
 * (see asl-runner.ts) and a restarted twin resumes them: approvals waiting for a decision wait
 * again with the time they had left, and those whose window passed while it was stopped expire.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { lambdaContext } from './apigw.js';
import {
  LambdaFunctionError,
  SfnApiError,
  StateMachineRunner,
  type Execution,
  type ExecutionPersistence,
  type ExecutionRecord,
  type Json,
} from './asl-runner.js';
import {
  approvalFunctionRole,
  synthApprovalDefinition,
  type ApprovalFunctionRole,
} from './synth-definition.js';
import { keepAliveWithMargin } from './listen.js';

export const LOCAL_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:warden-approval';

type LambdaHandler = (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<unknown>;

/** The production handlers behind the definition's placeholder ARNs, loaded on first use. */
export function productionHandlers(): Record<ApprovalFunctionRole, () => Promise<LambdaHandler>> {
  return {
    notify: async () => (await import('../../lambdas/handlers/notify.js')).handler as LambdaHandler,
    execute: async () => (await import('../../lambdas/handlers/execute.js')).handler as LambdaHandler,
  };
}

/** Calls a function in process, with Lambda's error shape (`errorType` = the error's name). */
export function localLambdaInvoker(
  handlers: Record<ApprovalFunctionRole, () => Promise<LambdaHandler>>,
): (functionArn: string, payload: Json) => Promise<Json> {
  return async (functionArn, payload) => {
    const role = approvalFunctionRole(functionArn);
    if (!role) throw new Error(`no local function for ${functionArn}`);
    const handler = await handlers[role]();
    try {
      const out = await handler(payload, lambdaContext(`warden-${role}`));
      return (out === undefined ? null : JSON.parse(JSON.stringify(out))) as Json;
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      throw new LambdaFunctionError(err.name || 'Error', err.message);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The synthesized definition, cached on disk by the hash of what it is synthesized from

const REPO = new URL('../..', import.meta.url).pathname;

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** What the synthesized definition depends on: the stack's code, the shared config schema, CDK's version. */
export function definitionSourceHash(): string {
  const files = [
    ...sourceFiles(join(REPO, 'lib')).filter(
      (f) => !f.includes('/lib/local/') || f.endsWith('/lib/local/synth-definition.ts'),
    ),
    join(REPO, 'lambdas/core/config.ts'),
    join(REPO, 'package-lock.json'),
  ]
    .filter((f) => existsSync(f))
    .sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(relative(REPO, f)).update('\0').update(readFileSync(f)).update('\0');
  return hash.digest('hex').slice(0, 32);
}

/**
 * `synthApprovalDefinition()`, cached: synthesizing the stack takes tens of seconds, so the result
 * is kept under node_modules/.cache keyed by the hash of every file it is synthesized from. Any
 * change to the stack's code synthesizes again. The integration test compares the runner's
 * definition with a fresh synthesis.
 */
export async function loadApprovalDefinition(
  cacheDir = join(REPO, 'node_modules/.cache/warden'),
): Promise<Record<string, unknown>> {
  const file = join(cacheDir, `approval-definition-${definitionSourceHash()}.json`);
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      // a torn write: synthesize again
    }
  }
  const definition = await synthApprovalDefinition();
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(file, JSON.stringify(definition));
  } catch {
    // read-only tree: synthesize every time
  }
  return definition;
}

// ---------------------------------------------------------------------------------------------
// Executions on disk

/** Finished executions are kept this long, as Step Functions keeps a standard execution's history. */
const RETENTION_MS = 90 * 86_400_000;

/**
 * One file per execution (`<dir>/<name>.json`, written to a temporary file and renamed, so a file
 * is always a whole checkpoint). Unreadable files are set aside as `.corrupt`, not fatal.
 */
export function fileExecutionPersistence(
  dir: string,
  log?: (e: Record<string, unknown>) => void,
): ExecutionPersistence {
  mkdirSync(dir, { recursive: true });
  const NAME = /^[A-Za-z0-9_-]{1,80}\.json$/;
  return {
    load() {
      const records: ExecutionRecord[] = [];
      for (const file of readdirSync(dir)) {
        if (!NAME.test(file)) continue;
        const path = join(dir, file);
        let record: ExecutionRecord;
        try {
          record = JSON.parse(readFileSync(path, 'utf8')) as ExecutionRecord;
        } catch (error) {
          log?.({
            level: 'warn',
            msg: 'unreadable execution checkpoint set aside',
            file,
            error: String(error),
          });
          renameSync(path, `${path}.corrupt`);
          continue;
        }
        if (
          record.status !== 'RUNNING' &&
          record.stopDate &&
          Date.now() - Date.parse(record.stopDate) > RETENTION_MS
        ) {
          rmSync(path, { force: true });
          continue;
        }
        records.push(record);
      }
      return records;
    },
    save(record) {
      const path = join(dir, `${record.name}.json`);
      writeFileSync(`${path}.tmp`, JSON.stringify(record));
      renameSync(`${path}.tmp`, path);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The wire protocol

export interface LocalStepFunctions {
  readonly url: string;
  readonly stateMachineArn: string;
  /** Resolves once the definition is loaded (StartExecution waits for it). */
  runner(): Promise<StateMachineRunner>;
  /**
   * Resumes the executions a previous run left running (with `stateDir`); call it once the
   * functions they invoke can run. Resolves to how many were resumed.
   */
  resume(): Promise<number>;
  close(): Promise<void>;
}

export interface LocalStepFunctionsOptions {
  readonly host?: string;
  /** @default loadApprovalDefinition() */
  readonly definition?: Record<string, unknown> | Promise<Record<string, unknown>>;
  readonly invokeLambda?: (functionArn: string, payload: Json) => Promise<Json>;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: (entry: Record<string, unknown>) => void;
  /** Where executions are checkpointed, so that a restart resumes them. @default in memory only */
  readonly stateDir?: string;
}

const epoch = (d: Date | undefined): number | undefined => (d ? d.getTime() / 1000 : undefined);

function describe(e: Execution): Record<string, unknown> {
  return {
    executionArn: e.executionArn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: epoch(e.startDate),
    ...(e.stopDate ? { stopDate: epoch(e.stopDate) } : {}),
    input: e.input,
    ...(e.output !== undefined ? { output: e.output } : {}),
    ...(e.error !== undefined ? { error: e.error } : {}),
    ...(e.cause !== undefined ? { cause: e.cause } : {}),
  };
}

function str(body: Record<string, unknown>, key: string, required = true): string | undefined {
  const v = body[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0)
    throw new SfnApiError('ValidationException', `${key} is required`);
  return v;
}

async function operation(
  runner: StateMachineRunner,
  op: string,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const checkMachine = () => {
    if (str(body, 'stateMachineArn') !== runner.stateMachineArn) {
      throw new SfnApiError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${String(body.stateMachineArn)}'`,
      );
    }
  };
  switch (op) {
    case 'StartExecution': {
      checkMachine();
      const e = runner.startExecution(str(body, 'name', false), str(body, 'input', false));
      return { executionArn: e.executionArn, startDate: epoch(e.startDate) };
    }
    case 'DescribeExecution':
      return describe(runner.describe(str(body, 'executionArn')!));
    case 'StopExecution': {
      const e = runner.stop(str(body, 'executionArn')!, str(body, 'error', false), str(body, 'cause', false));
      return { stopDate: epoch(e.stopDate ?? new Date()) };
    }
    case 'ListExecutions': {
      checkMachine();
      const status = str(body, 'statusFilter', false) as Execution['status'] | undefined;
      return {
        executions: runner.list(status).map((e) => {
          const d = describe(e);
          delete d.input;
          delete d.output;
          return d;
        }),
      };
    }
    case 'GetExecutionHistory': {
      const e = runner.describe(str(body, 'executionArn')!);
      return {
        events: e.history.map((h, i) => ({
          id: i + 1,
          timestamp: Date.parse(h.at) / 1000,
          type: h.type,
          ...(h.state ? { stateEnteredEventDetails: { name: h.state } } : {}),
        })),
      };
    }
    case 'DescribeStateMachine':
      checkMachine();
      return {
        stateMachineArn: runner.stateMachineArn,
        name: runner.stateMachineArn.split(':').pop(),
        status: 'ACTIVE',
        definition: JSON.stringify(runner.definition),
        roleArn: 'arn:aws:iam::000000000000:role/warden-local',
        type: 'STANDARD',
        creationDate: 0,
      };
    case 'SendTaskSuccess':
      runner.sendTaskSuccess(str(body, 'taskToken')!, str(body, 'output')!);
      return {};
    case 'SendTaskFailure':
      runner.sendTaskFailure(str(body, 'taskToken')!, str(body, 'error', false), str(body, 'cause', false));
      return {};
    case 'SendTaskHeartbeat':
      runner.sendTaskHeartbeat(str(body, 'taskToken')!);
      return {};
    default:
      throw new SfnApiError('UnknownOperationException', `the local twin does not implement ${op}`);
  }
}

export async function startLocalStepFunctions(
  options: LocalStepFunctionsOptions = {},
): Promise<LocalStepFunctions> {
  const host = options.host ?? '127.0.0.1';
  const definition = Promise.resolve(options.definition ?? loadApprovalDefinition());
  const runnerPromise = definition.then(
    (def) =>
      new StateMachineRunner({
        stateMachineArn: LOCAL_STATE_MACHINE_ARN,
        definition: def,
        invokeLambda: options.invokeLambda ?? localLambdaInvoker(productionHandlers()),
        ...(options.sleep ? { sleep: options.sleep } : {}),
        ...(options.log ? { log: options.log } : {}),
        ...(options.stateDir
          ? { persistence: fileExecutionPersistence(join(options.stateDir, 'executions'), options.log) }
          : {}),
      }),
  );
  // A failed synthesis must fail StartExecution loudly, not crash the twin.
  runnerPromise.catch((error: unknown) =>
    options.log?.({ level: 'error', msg: 'approval state machine unavailable', error: String(error) }),
  );

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const target = String(req.headers['x-amz-target'] ?? '');
      if (req.method !== 'POST' || !target.startsWith('AWSStepFunctions.')) {
        send(res, 400, {
          __type: 'UnknownOperationException',
          message: 'expected an AWSStepFunctions request',
        });
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>)
          : {};
      } catch {
        send(res, 400, { __type: 'SerializationException', message: 'the body is not JSON' });
        return;
      }
      try {
        const runner = await runnerPromise;
        send(res, 200, await operation(runner, target.slice('AWSStepFunctions.'.length), body));
      } catch (error) {
        if (error instanceof SfnApiError) {
          send(res, error.status, { __type: error.type, message: error.message });
        } else {
          options.log?.({ level: 'error', msg: 'local step functions error', error: String(error) });
          send(res, 500, { __type: 'InternalFailure', message: 'internal error' });
        }
      }
    })();
  });
  keepAliveWithMargin(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    stateMachineArn: LOCAL_STATE_MACHINE_ARN,
    runner: () => runnerPromise,
    resume: async () => (await runnerPromise).resume(),
    async close() {
      await runnerPromise.then((r) => r.close()).catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
