/**
 * A local runner for Amazon States Language: the subset Warden's approval workflow uses, executed
 * with Step Functions' semantics so the definition CDK synthesizes runs unchanged on one machine.
 *
 * Supported: Task (Lambda `arn:aws:states:::lambda:invoke`, `.waitForTaskToken`, and plain function
 * ARNs; TimeoutSeconds[Path], HeartbeatSeconds[Path]; Retry; Catch), Choice, Pass, Succeed, Fail;
 * InputPath, Parameters, ResultSelector, ResultPath, OutputPath with reference paths (`$.a.b`,
 * `$.a[0]`, `$['a']`) and the context object (`$$.Task.Token`, `$$.Execution.Id`, …); the state
 * machine's TimeoutSeconds. Anything else (Wait, Map, Parallel, intrinsic functions) is refused when
 * the definition is loaded, so a definition the runner cannot execute faithfully never starts.
 *
 * Executions live in memory and, with `persistence`, are checkpointed as they go (at every state
 * entered, when a task token is issued, heartbeated or answered, and when the execution ends), so a
 * restarted runner resumes them with `resume()`: an execution waiting for a task token waits again
 * for the same token with the time it had left (and times out at once when that time passed while
 * the runner was stopped); one that was in another state re-enters it (a Task is invoked again, as
 * its Lambda functions are idempotent; retry counts start over).
 */
import { randomBytes } from 'node:crypto';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/** An error as States Language sees it: a name to match in Retry/Catch and a cause. */
export class StatesError extends Error {
  constructor(
    readonly error: string,
    readonly cause_: string = '',
  ) {
    super(`${error}: ${cause_}`);
    this.name = 'StatesError';
  }
}

/** A Lambda function error: `errorType` becomes the States error name, as in AWS. */
export class LambdaFunctionError extends Error {
  constructor(
    readonly errorType: string,
    readonly errorMessage: string,
  ) {
    super(errorMessage);
    this.name = 'LambdaFunctionError';
  }
}

/** Errors the API answers with, by the names Step Functions uses on the wire. */
export class SfnApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface HistoryEvent {
  readonly at: string;
  readonly type: string;
  readonly state?: string;
  readonly detail?: Record<string, unknown>;
}

export interface Execution {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  readonly input: string;
  readonly startDate: Date;
  status: ExecutionStatus;
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  readonly history: HistoryEvent[];
  /** Settles when the execution ends (never rejects). */
  readonly done: Promise<void>;
}

/** Where a running execution was at its last checkpoint. */
export interface ExecutionCheckpoint {
  /** The state entered, and the input it was entered with. */
  readonly state: string;
  readonly input: Json;
  /** A `.waitForTaskToken` task that issued its token. */
  readonly wait?: {
    readonly token: string;
    /** Epoch ms when the task times out / when its heartbeat runs out, if it has those. */
    readonly timeoutAt?: number;
    readonly heartbeatAt?: number;
    /** Whether the function that received the token returned (it is not invoked again). */
    readonly invoked: boolean;
  };
}

/** An execution as persisted. */
export interface ExecutionRecord {
  readonly executionArn: string;
  readonly name: string;
  readonly input: string;
  readonly startDate: string;
  readonly status: ExecutionStatus;
  readonly stopDate?: string;
  readonly output?: string;
  readonly error?: string;
  readonly cause?: string;
  readonly history: readonly HistoryEvent[];
  /** Present while RUNNING. */
  readonly at?: ExecutionCheckpoint;
  /** The execution's tokens that no longer wait, and why (late answers get TaskTimedOut or TaskDoesNotExist). */
  readonly tokens: Readonly<Record<string, 'answered' | 'timed_out'>>;
}

/** Keeps execution records across restarts (save is called synchronously at each checkpoint). */
export interface ExecutionPersistence {
  load(): ExecutionRecord[];
  save(record: ExecutionRecord): void;
}

export interface RunnerOptions {
  readonly stateMachineArn: string;
  /** The ASL document. Validated on construction. */
  readonly definition: Record<string, unknown>;
  /** Invokes a Lambda function by ARN; throws LambdaFunctionError for a function error. */
  readonly invokeLambda: (functionArn: string, payload: Json) => Promise<Json>;
  /** Waits between retries (tests may shorten it). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: (entry: Record<string, unknown>) => void;
  /** Checkpoints executions so that a new runner can `resume()` them. @default in memory only */
  readonly persistence?: ExecutionPersistence;
}

const SUPPORTED_TYPES = new Set(['Task', 'Choice', 'Pass', 'Succeed', 'Fail']);
const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
const LAMBDA_INVOKE_WAIT = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const LAMBDA_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$/;

// ---------------------------------------------------------------------------------------------
// Paths

type PathSegment = string | number;

/** Parses a reference path (`$`, `$.a.b`, `$.a[0]`, `$['a b']`, and `$$…` for the context). */
export function parsePath(path: string): { context: boolean; segments: PathSegment[] } {
  let rest: string;
  let context = false;
  if (path.startsWith('$$')) {
    context = true;
    rest = path.slice(2);
  } else if (path.startsWith('$')) {
    rest = path.slice(1);
  } else {
    throw new StatesError('States.Runtime', `not a reference path: ${path}`);
  }
  const segments: PathSegment[] = [];
  const re = /^(?:\.([A-Za-z_$][\w$-]*|[^.[\]]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\])/;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m) throw new StatesError('States.Runtime', `unsupported path syntax: ${path}`);
    if (m[1] !== undefined) segments.push(m[1]);
    else if (m[2] !== undefined) segments.push(Number(m[2]));
    else segments.push((m[3] ?? m[4]).replace(/\\(.)/g, '$1'));
    rest = rest.slice(m[0].length);
  }
  return { context, segments };
}

const MISSING = Symbol('missing');

function lookup(value: Json, segments: readonly PathSegment[]): Json | typeof MISSING {
  let cur: Json = value;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object') return MISSING;
    if (typeof s === 'number') {
      if (!Array.isArray(cur) || s >= cur.length) return MISSING;
      cur = cur[s];
    } else {
      if (Array.isArray(cur) || !Object.hasOwn(cur, s)) return MISSING;
      cur = (cur as Obj)[s];
    }
  }
  return cur;
}

/** Reads a path; a missing field is a States.Runtime error, as in Step Functions. */
export function readPath(path: string, input: Json, context: Json): Json {
  const parsed = parsePath(path);
  const found = lookup(parsed.context ? context : input, parsed.segments);
  if (found === MISSING) {
    throw new StatesError('States.Runtime', `the JSONPath ${path} could not be found in the input`);
  }
  return found;
}

function isPresent(path: string, input: Json, context: Json): boolean {
  const parsed = parsePath(path);
  return lookup(parsed.context ? context : input, parsed.segments) !== MISSING;
}

/** Writes `value` at a ResultPath into a copy of `input` (`null` discards, `$` replaces). */
export function applyResultPath(resultPath: string | null | undefined, input: Json, result: Json): Json {
  if (resultPath === null) return input;
  if (resultPath === undefined || resultPath === '$') return result;
  const { context, segments } = parsePath(resultPath);
  if (context) throw new StatesError('States.Runtime', 'ResultPath cannot use the context object');
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new StatesError('States.Runtime', `cannot apply ResultPath ${resultPath} to a non-object input`);
  }
  const root = structuredClone(input) as Obj;
  let cur: Obj = root;
  segments.forEach((s, i) => {
    if (typeof s === 'number') throw new StatesError('States.Runtime', 'ResultPath cannot index arrays');
    if (i === segments.length - 1) {
      cur[s] = result;
      return;
    }
    const next = cur[s];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) {
      cur[s] = {};
    }
    cur = cur[s] as Obj;
  });
  return root;
}

/** Parameters / ResultSelector: keys ending in `.$` take the value at their path. */
export function applyPayloadTemplate(template: Json, input: Json, context: Json): Json {
  if (Array.isArray(template)) return template.map((t) => applyPayloadTemplate(t, input, context));
  if (template === null || typeof template !== 'object') return template;
  const out: Obj = {};
  for (const [key, value] of Object.entries(template)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string') throw new StatesError('States.Runtime', `${key} must name a path`);
      if (!value.startsWith('$')) {
        throw new StatesError('States.Runtime', `intrinsic functions are not supported: ${value}`);
      }
      out[key.slice(0, -2)] = readPath(value, input, context);
    } else {
      out[key] = applyPayloadTemplate(value, input, context);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Choice rules

function evaluateRule(rule: Obj, input: Json, context: Json): boolean {
  if (Array.isArray(rule.And)) return (rule.And as Obj[]).every((r) => evaluateRule(r, input, context));
  if (Array.isArray(rule.Or)) return (rule.Or as Obj[]).some((r) => evaluateRule(r, input, context));
  if (rule.Not && typeof rule.Not === 'object') return !evaluateRule(rule.Not as Obj, input, context);
  const variable = rule.Variable;
  if (typeof variable !== 'string') throw new StatesError('States.Runtime', 'a Choice rule needs a Variable');
  if ('IsPresent' in rule) return isPresent(variable, input, context) === rule.IsPresent;
  if (!isPresent(variable, input, context)) {
    throw new StatesError(
      'States.Runtime',
      `Invalid path '${variable}': The choice state's condition path references an invalid value.`,
    );
  }
  const v = readPath(variable, input, context);
  for (const [op, raw] of Object.entries(rule)) {
    if (op === 'Variable' || op === 'Next') continue;
    const operand = op.endsWith('Path') && op !== 'IsPresent' ? readPath(String(raw), input, context) : raw;
    const base = op.endsWith('Path') ? op.slice(0, -4) : op;
    switch (base) {
      case 'IsNull':
        return (v === null) === operand;
      case 'IsString':
        return (typeof v === 'string') === operand;
      case 'IsNumeric':
        return (typeof v === 'number') === operand;
      case 'IsBoolean':
        return (typeof v === 'boolean') === operand;
      case 'StringEquals':
        return typeof v === 'string' && v === operand;
      case 'StringLessThan':
        return typeof v === 'string' && typeof operand === 'string' && v < operand;
      case 'StringGreaterThan':
        return typeof v === 'string' && typeof operand === 'string' && v > operand;
      case 'StringLessThanEquals':
        return typeof v === 'string' && typeof operand === 'string' && v <= operand;
      case 'StringGreaterThanEquals':
        return typeof v === 'string' && typeof operand === 'string' && v >= operand;
      case 'StringMatches':
        return typeof v === 'string' && typeof operand === 'string' && globMatch(operand, v);
      case 'NumericEquals':
        return typeof v === 'number' && v === operand;
      case 'NumericLessThan':
        return typeof v === 'number' && typeof operand === 'number' && v < operand;
      case 'NumericGreaterThan':
        return typeof v === 'number' && typeof operand === 'number' && v > operand;
      case 'NumericLessThanEquals':
        return typeof v === 'number' && typeof operand === 'number' && v <= operand;
      case 'NumericGreaterThanEquals':
        return typeof v === 'number' && typeof operand === 'number' && v >= operand;
      case 'BooleanEquals':
        return typeof v === 'boolean' && v === operand;
      default:
        throw new StatesError('States.Runtime', `unsupported Choice operator ${op}`);
    }
  }
  throw new StatesError('States.Runtime', 'a Choice rule has no comparison');
}

function globMatch(pattern: string, value: string): boolean {
  const re = pattern
    .split(/(?<!\\)\*/)
    .map((part) => part.replace(/\\\*/g, '*').replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${re}$`, 's').test(value);
}

// ---------------------------------------------------------------------------------------------
// Errors: matching Retry and Catch

const TIMEOUTS = new Set(['States.Timeout', 'States.HeartbeatTimeout']);

/** Whether a Retry/Catch ErrorEquals list matches `error`, with the reserved wildcards' rules. */
export function errorMatches(errorEquals: readonly string[], error: string): boolean {
  for (const e of errorEquals) {
    if (e === error) return true;
    if (e === 'States.ALL' && error !== 'States.Runtime' && error !== 'States.DataLimitExceeded') return true;
    if (e === 'States.Timeout' && error === 'States.HeartbeatTimeout') return true;
    if (e === 'States.TaskFailed' && !TIMEOUTS.has(error) && error !== 'States.Runtime') return true;
  }
  return false;
}

/** Refuses a definition that uses anything this runner does not implement faithfully. */
export function validateDefinition(def: Record<string, unknown>): void {
  const states = def.States as Record<string, Obj> | undefined;
  if (!states || typeof def.StartAt !== 'string' || !states[def.StartAt]) {
    throw new Error('the definition needs StartAt naming one of its States');
  }
  for (const [name, state] of Object.entries(states)) {
    const type = String(state.Type);
    if (!SUPPORTED_TYPES.has(type))
      throw new Error(`state "${name}": ${type} is not supported by the local runner`);
    for (const next of [
      state.Next,
      state.Default,
      ...((state.Catch as Obj[] | undefined) ?? []).map((c) => c.Next),
    ]) {
      if (next !== undefined && (typeof next !== 'string' || !states[next])) {
        throw new Error(`state "${name}" goes to unknown state ${JSON.stringify(next)}`);
      }
    }
    if (type === 'Task') {
      const resource = String(state.Resource);
      if (resource !== LAMBDA_INVOKE && resource !== LAMBDA_INVOKE_WAIT && !LAMBDA_ARN.test(resource)) {
        throw new Error(`state "${name}": resource ${resource} is not supported by the local runner`);
      }
    }
    if (type === 'Choice') {
      for (const c of (state.Choices as Obj[] | undefined) ?? []) {
        if (typeof c.Next !== 'string' || !states[c.Next])
          throw new Error(`state "${name}": a choice has an unknown Next`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The runner

interface Waiter {
  readonly executionArn: string;
  resolve(output: Json): void;
  reject(error: StatesError): void;
  heartbeat(): void;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

export class StateMachineRunner {
  readonly stateMachineArn: string;
  readonly definition: Record<string, unknown>;
  private readonly executions = new Map<string, Execution>();
  private readonly byName = new Map<string, Execution>();
  private readonly waiters = new Map<string, Waiter>();
  /** Tokens that were issued and are no longer waiting, and why. */
  private readonly finishedTokens = new Map<string, 'answered' | 'timed_out'>();
  private readonly aborters = new Map<string, () => void>();
  private readonly sleep: (ms: number) => Promise<void>;
  /** Per running execution: its last checkpoint (persisted) and its finished tokens. */
  private readonly checkpoints = new Map<string, ExecutionCheckpoint>();
  private readonly tokensOf = new Map<string, Record<string, 'answered' | 'timed_out'>>();
  /** Executions loaded from persistence, to be resumed from their checkpoint by `resume()`. */
  private readonly toResume = new Map<string, ExecutionCheckpoint>();
  /** The checkpoint a resumed execution re-enters its state with (consumed by that state). */
  private readonly resuming = new Map<string, ExecutionCheckpoint>();
  private closed = false;

  constructor(private readonly options: RunnerOptions) {
    validateDefinition(options.definition);
    this.definition = options.definition;
    this.stateMachineArn = options.stateMachineArn;
    this.sleep = options.sleep ?? defaultSleep;
    for (const record of options.persistence?.load() ?? []) this.load(record);
  }

  /**
   * Resumes the executions that were running when the persisted runner stopped (call it once the
   * functions they invoke can run). Returns how many were resumed.
   */
  resume(): number {
    const pending = [...this.toResume];
    this.toResume.clear();
    for (const [arn, at] of pending) {
      const e = this.executions.get(arn);
      if (!e || e.status !== 'RUNNING') continue;
      this.resuming.set(arn, at);
      const finish = (e as Execution & { finish?: () => void }).finish;
      void this.run(e, at.input, at.state).finally(() => finish?.());
    }
    return pending.length;
  }

  private load(record: ExecutionRecord): void {
    const prefix = `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:`;
    if (!record.executionArn.startsWith(prefix)) return;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const e: Execution & { finish?: () => void } = {
      executionArn: record.executionArn,
      stateMachineArn: this.stateMachineArn,
      name: record.name,
      input: record.input,
      startDate: new Date(record.startDate),
      status: record.status,
      ...(record.stopDate ? { stopDate: new Date(record.stopDate) } : {}),
      ...(record.output !== undefined ? { output: record.output } : {}),
      ...(record.error !== undefined ? { error: record.error } : {}),
      ...(record.cause !== undefined ? { cause: record.cause } : {}),
      history: [...record.history],
      done,
      finish,
    };
    if (e.status !== 'RUNNING') finish();
    this.executions.set(e.executionArn, e);
    this.byName.set(e.name, e);
    const tokens = { ...record.tokens };
    this.tokensOf.set(e.executionArn, tokens);
    for (const [token, how] of Object.entries(tokens)) this.finishedTokens.set(token, how);
    if (e.status === 'RUNNING') {
      // A running execution without a checkpoint never entered a state: start it from StartAt.
      const at = record.at ?? {
        state: this.definition.StartAt as string,
        input: JSON.parse(e.input) as Json,
      };
      this.checkpoints.set(e.executionArn, at);
      this.toResume.set(e.executionArn, at);
    }
  }

  private save(e: Execution): void {
    const persistence = this.options.persistence;
    if (!persistence || this.closed) return;
    const at = e.status === 'RUNNING' ? this.checkpoints.get(e.executionArn) : undefined;
    persistence.save({
      executionArn: e.executionArn,
      name: e.name,
      input: e.input,
      startDate: e.startDate.toISOString(),
      status: e.status,
      ...(e.stopDate ? { stopDate: e.stopDate.toISOString() } : {}),
      ...(e.output !== undefined ? { output: e.output } : {}),
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.cause !== undefined ? { cause: e.cause } : {}),
      history: e.history,
      ...(at ? { at } : {}),
      tokens: this.tokensOf.get(e.executionArn) ?? {},
    });
  }

  private checkpoint(e: Execution, at: ExecutionCheckpoint): void {
    this.checkpoints.set(e.executionArn, at);
    this.save(e);
  }

  private tokenFinished(e: Execution, token: string, how: 'answered' | 'timed_out'): void {
    this.finishedTokens.set(token, how);
    const tokens = this.tokensOf.get(e.executionArn) ?? {};
    tokens[token] = how;
    this.tokensOf.set(e.executionArn, tokens);
  }

  startExecution(name: string | undefined, input: string | undefined): Execution {
    const execName = name ?? randomBytes(16).toString('hex');
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(execName)) {
      throw new SfnApiError('InvalidName', `invalid execution name: ${execName}`);
    }
    const inputText = input ?? '{}';
    let parsed: Json;
    try {
      parsed = JSON.parse(inputText) as Json;
    } catch {
      throw new SfnApiError('InvalidExecutionInput', 'the execution input is not valid JSON');
    }
    const existing = this.byName.get(execName);
    if (existing) {
      // As in Step Functions (standard): the same name and input while running is idempotent.
      if (existing.status === 'RUNNING' && existing.input === inputText) return existing;
      throw new SfnApiError('ExecutionAlreadyExists', `Execution Already Exists: '${existing.executionArn}'`);
    }
    const executionArn = `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${execName}`;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const execution: Execution = {
      executionArn,
      stateMachineArn: this.stateMachineArn,
      name: execName,
      input: inputText,
      startDate: new Date(),
      status: 'RUNNING',
      history: [],
      done,
    };
    this.executions.set(executionArn, execution);
    this.byName.set(execName, execution);
    this.event(execution, 'ExecutionStarted');
    this.save(execution);
    void this.run(execution, parsed).finally(finish);
    return execution;
  }

  describe(executionArn: string): Execution {
    const e = this.executions.get(executionArn);
    if (!e) throw new SfnApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return e;
  }

  list(status?: ExecutionStatus): Execution[] {
    return [...this.executions.values()].filter((e) => !status || e.status === status);
  }

  stop(executionArn: string, error?: string, cause?: string): Execution {
    const e = this.describe(executionArn);
    if (e.status === 'RUNNING') {
      this.end(e, 'ABORTED', { error, cause });
      this.aborters.get(executionArn)?.();
    }
    return e;
  }

  sendTaskSuccess(taskToken: string, output: string): void {
    const waiter = this.waiter(taskToken);
    let parsed: Json;
    try {
      parsed = JSON.parse(output) as Json;
    } catch {
      throw new SfnApiError('InvalidOutput', 'the output is not valid JSON');
    }
    waiter.resolve(parsed);
  }

  sendTaskFailure(taskToken: string, error?: string, cause?: string): void {
    this.waiter(taskToken).reject(new StatesError(error ?? '', cause ?? ''));
  }

  sendTaskHeartbeat(taskToken: string): void {
    this.waiter(taskToken).heartbeat();
  }

  /**
   * Ends every running execution (the twin is closing). With persistence they are only detached:
   * nothing is recorded from here on, so the next runner resumes them where they were.
   */
  close(): void {
    this.closed = true;
    for (const e of this.executions.values())
      if (e.status === 'RUNNING') this.stop(e.executionArn, 'Twin.Closed');
  }

  private waiter(taskToken: string): Waiter {
    const waiter = this.waiters.get(taskToken);
    if (waiter) return waiter;
    const finished = this.finishedTokens.get(taskToken);
    if (finished === 'timed_out') throw new SfnApiError('TaskTimedOut', 'Task Timed Out');
    if (finished === 'answered') throw new SfnApiError('TaskDoesNotExist', 'Task Does Not Exist');
    throw new SfnApiError('InvalidToken', 'Invalid Token');
  }

  private event(e: Execution, type: string, state?: string, detail?: Record<string, unknown>): void {
    e.history.push({
      at: new Date().toISOString(),
      type,
      ...(state ? { state } : {}),
      ...(detail ? { detail } : {}),
    });
  }

  private end(
    e: Execution,
    status: Exclude<ExecutionStatus, 'RUNNING'>,
    result: { output?: Json; error?: string; cause?: string },
  ): void {
    if (e.status !== 'RUNNING') return;
    e.status = status;
    e.stopDate = new Date();
    if (result.output !== undefined) e.output = JSON.stringify(result.output);
    if (result.error !== undefined) e.error = result.error;
    if (result.cause !== undefined) e.cause = result.cause;
    const type = {
      SUCCEEDED: 'ExecutionSucceeded',
      FAILED: 'ExecutionFailed',
      TIMED_OUT: 'ExecutionTimedOut',
      ABORTED: 'ExecutionAborted',
    }[status];
    this.event(e, type, undefined, result.error ? { error: result.error } : undefined);
    this.checkpoints.delete(e.executionArn);
    this.save(e);
    this.options.log?.({ msg: 'execution ended', execution: e.name, status, error: result.error });
  }

  private async run(e: Execution, input: Json, resumeAt?: string): Promise<void> {
    const def = this.definition;
    const timeoutSeconds = typeof def.TimeoutSeconds === 'number' ? def.TimeoutSeconds : undefined;
    let timer: NodeJS.Timeout | undefined;
    let aborted!: (reason: StatesError) => void;
    const stopped = new Promise<never>((_, reject) => (aborted = reject));
    stopped.catch(() => undefined);
    this.aborters.set(e.executionArn, () => aborted(new StatesError('Execution.Aborted')));
    if (timeoutSeconds !== undefined) {
      // From the execution's start, also for one resumed after a restart.
      const remaining = Math.max(0, e.startDate.getTime() + timeoutSeconds * 1000 - Date.now());
      timer = setTimeout(() => {
        this.end(e, 'TIMED_OUT', { error: 'States.Timeout', cause: 'the state machine timed out' });
        aborted(new StatesError('States.Timeout'));
      }, remaining);
      timer.unref?.();
    }
    try {
      const states = def.States as Record<string, Obj>;
      let name = resumeAt ?? (def.StartAt as string);
      let data = input;
      let resumed = resumeAt !== undefined;
      for (;;) {
        if (e.status !== 'RUNNING') return;
        const state = states[name];
        if (!state) throw new StatesError('States.Runtime', `the definition has no state "${name}"`);
        // A resumed state was entered before the restart (its history says so already).
        if (!resumed) {
          this.event(e, `${state.Type}StateEntered`, name);
          this.checkpoint(e, { state: name, input: data });
        }
        resumed = false;
        const step = await Promise.race([this.step(e, name, state, data), stopped]);
        if (e.status !== 'RUNNING') return;
        this.event(e, `${state.Type}StateExited`, name);
        if (step.kind === 'next') {
          name = step.next;
          data = step.output;
        } else if (step.kind === 'succeed') {
          this.end(e, 'SUCCEEDED', { output: step.output });
          return;
        } else {
          this.end(e, 'FAILED', { error: step.error, cause: step.cause });
          return;
        }
      }
    } catch (error) {
      if (e.status === 'RUNNING') {
        const err = error instanceof StatesError ? error : new StatesError('States.Runtime', String(error));
        this.end(e, 'FAILED', { error: err.error, cause: err.cause_ });
      }
    } finally {
      if (timer) clearTimeout(timer);
      this.aborters.delete(e.executionArn);
    }
  }

  private contextObject(e: Execution, stateName: string, retryCount: number, token?: string): Json {
    return {
      Execution: {
        Id: e.executionArn,
        Name: e.name,
        Input: JSON.parse(e.input) as Json,
        StartTime: e.startDate.toISOString(),
      },
      State: { Name: stateName, EnteredTime: new Date().toISOString(), RetryCount: retryCount },
      StateMachine: { Id: this.stateMachineArn },
      ...(token ? { Task: { Token: token } } : {}),
    };
  }

  private async step(
    e: Execution,
    name: string,
    state: Obj,
    raw: Json,
  ): Promise<
    | { kind: 'next'; next: string; output: Json }
    | { kind: 'succeed'; output: Json }
    | { kind: 'fail'; error: string; cause: string }
  > {
    const ctx = this.contextObject(e, name, 0);
    const inputPath = state.InputPath as string | null | undefined;
    const effective = inputPath === null ? {} : inputPath ? readPath(inputPath, raw, ctx) : raw;
    const outputPath = state.OutputPath as string | null | undefined;
    const output = (v: Json): Json =>
      outputPath === null ? {} : outputPath ? readPath(outputPath, v, ctx) : v;

    switch (state.Type) {
      case 'Succeed':
        return { kind: 'succeed', output: output(effective) };
      case 'Fail':
        return { kind: 'fail', error: String(state.Error ?? ''), cause: String(state.Cause ?? '') };
      case 'Pass': {
        const params =
          state.Parameters !== undefined ? applyPayloadTemplate(state.Parameters, effective, ctx) : effective;
        const result = state.Result !== undefined ? state.Result : params;
        return this.nextOrEnd(
          state,
          output(applyResultPath(state.ResultPath as string | null | undefined, raw, result)),
        );
      }
      case 'Choice': {
        for (const rule of (state.Choices as Obj[]) ?? []) {
          if (evaluateRule(rule, effective, ctx))
            return { kind: 'next', next: rule.Next as string, output: output(effective) };
        }
        if (typeof state.Default === 'string')
          return { kind: 'next', next: state.Default, output: output(effective) };
        throw new StatesError('States.NoChoiceMatched', `no choice rule matched in state "${name}"`);
      }
      case 'Task':
        return this.task(e, name, state, raw, effective, output);
      default:
        throw new StatesError('States.Runtime', `unsupported state type ${String(state.Type)}`);
    }
  }

  private nextOrEnd(
    state: Obj,
    output: Json,
  ): { kind: 'next'; next: string; output: Json } | { kind: 'succeed'; output: Json } {
    if (state.End === true || typeof state.Next !== 'string') return { kind: 'succeed', output };
    return { kind: 'next', next: state.Next, output };
  }

  private async task(
    e: Execution,
    name: string,
    state: Obj,
    raw: Json,
    effective: Json,
    output: (v: Json) => Json,
  ): Promise<{ kind: 'next'; next: string; output: Json } | { kind: 'succeed'; output: Json }> {
    const retriers = ((state.Retry as Obj[] | undefined) ?? []).map((r) => ({ rule: r, attempts: 0 }));
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.invokeTask(e, name, state, raw, effective, attempt);
        const selected =
          state.ResultSelector !== undefined
            ? applyPayloadTemplate(state.ResultSelector, result, this.contextObject(e, name, attempt))
            : result;
        this.event(e, 'TaskSucceeded', name);
        return this.nextOrEnd(
          state,
          output(applyResultPath(state.ResultPath as string | null | undefined, raw, selected)),
        );
      } catch (error) {
        if (e.status !== 'RUNNING') throw error;
        const err = error instanceof StatesError ? error : new StatesError('States.Runtime', String(error));
        this.event(e, 'TaskFailed', name, { error: err.error });
        const retrier = retriers.find((r) => errorMatches((r.rule.ErrorEquals as string[]) ?? [], err.error));
        const max = retrier ? ((retrier.rule.MaxAttempts as number | undefined) ?? 3) : 0;
        if (retrier && retrier.attempts < max) {
          const interval = (retrier.rule.IntervalSeconds as number | undefined) ?? 1;
          const rate = (retrier.rule.BackoffRate as number | undefined) ?? 2;
          const maxDelay = retrier.rule.MaxDelaySeconds as number | undefined;
          let delay = interval * Math.pow(rate, retrier.attempts);
          if (maxDelay !== undefined) delay = Math.min(delay, maxDelay);
          retrier.attempts++;
          await this.sleep(delay * 1000);
          if (e.status !== 'RUNNING') throw err;
          continue;
        }
        const catcher = ((state.Catch as Obj[] | undefined) ?? []).find((c) =>
          errorMatches((c.ErrorEquals as string[]) ?? [], err.error),
        );
        if (!catcher) throw err;
        const caught = applyResultPath(catcher.ResultPath as string | null | undefined, raw, {
          Error: err.error,
          Cause: err.cause_,
        });
        return { kind: 'next', next: catcher.Next as string, output: caught };
      }
    }
  }

  private seconds(
    state: Obj,
    key: 'TimeoutSeconds' | 'HeartbeatSeconds',
    raw: Json,
    ctx: Json,
  ): number | undefined {
    if (typeof state[key] === 'number') return state[key] as number;
    const path = state[`${key}Path`];
    if (typeof path !== 'string') return undefined;
    const v = readPath(path, raw, ctx);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new StatesError('States.Runtime', `${key}Path ${path} must be a positive integer`);
    }
    return v;
  }

  private async invokeTask(
    e: Execution,
    name: string,
    state: Obj,
    raw: Json,
    effective: Json,
    attempt: number,
  ): Promise<Json> {
    const resource = String(state.Resource);
    const waitForToken = resource === LAMBDA_INVOKE_WAIT;
    const resumedWait = this.resuming.get(e.executionArn);
    this.resuming.delete(e.executionArn);
    const previous = waitForToken && resumedWait?.state === name ? resumedWait.wait : undefined;
    const token = waitForToken ? (previous?.token ?? randomBytes(48).toString('base64url')) : undefined;
    const ctx = this.contextObject(e, name, attempt, token);
    const params =
      state.Parameters !== undefined ? applyPayloadTemplate(state.Parameters, effective, ctx) : effective;
    const timeout = this.seconds(state, 'TimeoutSeconds', raw, ctx);
    const heartbeat = this.seconds(state, 'HeartbeatSeconds', raw, ctx);

    let functionArn: string;
    let payload: Json;
    if (resource === LAMBDA_INVOKE || waitForToken) {
      const p = params as Obj;
      if (!p || typeof p.FunctionName !== 'string')
        throw new StatesError('States.Runtime', 'FunctionName is required');
      functionArn = p.FunctionName;
      payload = p.Payload ?? effective;
    } else {
      functionArn = resource;
      payload = params;
    }
    if (waitForToken && !JSON.stringify(payload).includes(token!)) {
      // Step Functions refuses this too: nobody could ever answer the task.
      throw new StatesError('States.Runtime', 'a .waitForTaskToken task must pass $$.Task.Token');
    }

    const invoke = async (): Promise<Json> => {
      try {
        // Through JSON, as over the wire: the function never shares objects with the runner.
        return (
          (await this.options.invokeLambda(functionArn, JSON.parse(JSON.stringify(payload)) as Json)) ?? null
        );
      } catch (error) {
        if (error instanceof LambdaFunctionError) {
          throw new StatesError(
            error.errorType,
            JSON.stringify({ errorType: error.errorType, errorMessage: error.errorMessage }),
          );
        }
        throw new StatesError('Lambda.ServiceException', String(error));
      }
    };

    if (!waitForToken) {
      const result = await withTimeout(invoke(), timeout);
      return resource === LAMBDA_INVOKE
        ? { Payload: result, StatusCode: 200, ExecutedVersion: '$LATEST' }
        : result;
    }

    // Wait for the callback; the invocation itself may fail first. The wait is checkpointed with
    // its deadlines, so a restarted runner waits for the same token until the same time.
    const now = Date.now();
    let wait = {
      token: token!,
      ...(timeout !== undefined ? { timeoutAt: previous ? previous.timeoutAt : now + timeout * 1000 } : {}),
      ...(heartbeat !== undefined
        ? { heartbeatAt: previous ? previous.heartbeatAt : now + heartbeat * 1000 }
        : {}),
      invoked: previous?.invoked ?? false,
    };
    const checkpointWait = () => this.checkpoint(e, { state: name, input: raw, wait });
    checkpointWait();
    return new Promise<Json>((resolve, reject) => {
      let settled = false;
      let heartbeatTimer: NodeJS.Timeout | undefined;
      const timers: NodeJS.Timeout[] = [];
      const finish = (how: 'answered' | 'timed_out') => {
        settled = true;
        this.waiters.delete(token!);
        this.tokenFinished(e, token!, how);
        timers.forEach(clearTimeout);
        if (heartbeatTimer) clearTimeout(heartbeatTimer);
      };
      const armHeartbeat = (at: number | undefined) => {
        if (at === undefined || heartbeat === undefined) return;
        if (heartbeatTimer) clearTimeout(heartbeatTimer);
        heartbeatTimer = setTimeout(
          () => {
            if (settled) return;
            finish('timed_out');
            reject(new StatesError('States.HeartbeatTimeout', 'the task sent no heartbeat in time'));
          },
          Math.max(0, at - Date.now()),
        );
        heartbeatTimer.unref?.();
      };
      this.waiters.set(token!, {
        executionArn: e.executionArn,
        resolve: (out) => {
          if (settled) return;
          finish('answered');
          resolve(out);
        },
        reject: (err) => {
          if (settled) return;
          finish('answered');
          reject(err);
        },
        heartbeat: () => {
          if (settled || heartbeat === undefined) return;
          wait = { ...wait, heartbeatAt: Date.now() + heartbeat * 1000 };
          checkpointWait();
          armHeartbeat(wait.heartbeatAt);
        },
      });
      if (wait.timeoutAt !== undefined) {
        const t = setTimeout(
          () => {
            if (settled) return;
            finish('timed_out');
            reject(new StatesError('States.Timeout', 'the task timed out'));
          },
          Math.max(0, wait.timeoutAt - Date.now()),
        );
        t.unref?.();
        timers.push(t);
      }
      armHeartbeat(wait.heartbeatAt);
      // An aborted or timed-out execution must not leave its task answerable.
      const watch = setInterval(() => {
        if (e.status !== 'RUNNING' && !settled) {
          finish('timed_out');
          reject(new StatesError('Execution.Aborted'));
        }
      }, 250);
      watch.unref?.();
      timers.push(watch as unknown as NodeJS.Timeout);
      if (wait.invoked) return;
      invoke().then(
        () => {
          if (settled) return;
          wait = { ...wait, invoked: true };
          checkpointWait();
        },
        (err: unknown) => {
          if (settled) return;
          finish('answered');
          reject(err instanceof StatesError ? err : new StatesError('States.Runtime', String(err)));
        },
      );
    });
  }
}

function withTimeout<T>(p: Promise<T>, seconds: number | undefined): Promise<T> {
  if (seconds === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new StatesError('States.Timeout', 'the task timed out')),
      seconds * 1000,
    );
    t.unref?.();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}
