/** The local ASL runner: States Language semantics on small definitions, with in-process "Lambdas". */
import { describe, expect, it } from 'vitest';
import {
  LambdaFunctionError,
  SfnApiError,
  StateMachineRunner,
  applyPayloadTemplate,
  applyResultPath,
  errorMatches,
  type ExecutionPersistence,
  type ExecutionRecord,
  type Json,
} from '../../lib/local/asl-runner.js';

const FN = 'arn:aws:lambda:us-east-1:000000000000:function:fn';
const ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:test';

function runner(definition: Record<string, unknown>, invoke: (payload: any) => Promise<Json> | Json) {
  return new StateMachineRunner({
    stateMachineArn: ARN,
    definition,
    invokeLambda: async (_arn, payload) => invoke(payload),
    sleep: async () => undefined, // retries without waiting
  });
}

const waitTask = (extra: Record<string, unknown> = {}) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
  Parameters: { FunctionName: FN, Payload: { 'token.$': '$$.Task.Token', 'id.$': '$.id' } },
  ResultPath: '$.answer',
  ...extra,
});

describe('asl runner', () => {
  it('applies Parameters, ResultSelector, ResultPath and OutputPath like Step Functions', async () => {
    expect(
      applyPayloadTemplate(
        { 'a.$': '$.x.y', b: 1, 'c.$': '$$.Task.Token' },
        { x: { y: 2 } },
        { Task: { Token: 't' } },
      ),
    ).toEqual({
      a: 2,
      b: 1,
      c: 't',
    });
    expect(applyResultPath('$.r.s', { k: 1 }, 5)).toEqual({ k: 1, r: { s: 5 } });
    expect(applyResultPath(null, { k: 1 }, 5)).toEqual({ k: 1 });
    const r = runner(
      {
        StartAt: 'T',
        States: {
          T: {
            Type: 'Task',
            Resource: 'arn:aws:states:::lambda:invoke',
            Parameters: { FunctionName: FN, Payload: { 'n.$': '$.n' } },
            ResultSelector: { 'v.$': '$.Payload.doubled' },
            ResultPath: '$.out',
            OutputPath: '$.out',
            End: true,
          },
        },
      },
      (p) => ({ doubled: p.n * 2 }),
    );
    const e = r.startExecution('x1', JSON.stringify({ n: 21 }));
    await e.done;
    expect(e.status).toBe('SUCCEEDED');
    expect(JSON.parse(e.output!)).toEqual({ v: 42 });
  });

  it('waits for a task token and continues with the callback output through a Choice', async () => {
    let token = '';
    const r = runner(
      {
        StartAt: 'Wait',
        States: {
          Wait: waitTask({ Next: 'Pick' }),
          Pick: {
            Type: 'Choice',
            Choices: [{ Variable: '$.answer.decision', StringEquals: 'approve', Next: 'Yes' }],
            Default: 'No',
          },
          Yes: { Type: 'Succeed' },
          No: { Type: 'Fail', Error: 'Denied', Cause: 'no' },
        },
      },
      (p) => {
        token = p.token;
        return null;
      },
    );
    const e = r.startExecution('x2', '{"id":"r1"}');
    while (!token) await new Promise((res) => setTimeout(res, 5));
    expect(() => r.sendTaskSuccess('forged', '{}')).toThrow(SfnApiError);
    r.sendTaskSuccess(token, JSON.stringify({ decision: 'approve' }));
    await e.done;
    expect(e.status).toBe('SUCCEEDED');
    expect(JSON.parse(e.output!)).toEqual({ id: 'r1', answer: { decision: 'approve' } });
    // A second answer for the same token is refused.
    expect(() => r.sendTaskSuccess(token, '{}')).toThrow(/Task Does Not Exist/);
  });

  it('times out a waiting task from TimeoutSecondsPath and routes States.Timeout to its Catch', async () => {
    let token = '';
    const r = runner(
      {
        StartAt: 'Wait',
        States: {
          Wait: waitTask({
            TimeoutSecondsPath: '$.window',
            Catch: [{ ErrorEquals: ['States.Timeout'], ResultPath: '$.error', Next: 'Expired' }],
            Next: 'Done',
          }),
          Expired: { Type: 'Pass', Result: 'expired', ResultPath: '$.outcome', End: true },
          Done: { Type: 'Succeed' },
        },
      },
      (p) => {
        token = p.token;
        return null;
      },
    );
    const e = r.startExecution('x3', JSON.stringify({ id: 'r', window: 1 }));
    await e.done;
    expect(e.status).toBe('SUCCEEDED');
    expect(JSON.parse(e.output!)).toMatchObject({ outcome: 'expired', error: { Error: 'States.Timeout' } });
    expect(() => r.sendTaskSuccess(token, '{}')).toThrow(/Task Timed Out/);
  });

  it('fails a task whose heartbeat does not arrive, and SendTaskHeartbeat keeps it alive', async () => {
    let token = '';
    const r = runner(
      {
        StartAt: 'Wait',
        States: {
          Wait: waitTask({
            HeartbeatSeconds: 2,
            Catch: [{ ErrorEquals: ['States.HeartbeatTimeout'], ResultPath: '$.error', Next: 'Late' }],
            End: true,
          }),
          Late: { Type: 'Fail', Error: 'Late' },
        },
      },
      (p) => {
        token = p.token;
        return null;
      },
    );
    const alive = r.startExecution('x4', '{"id":"a"}');
    while (!token) await new Promise((res) => setTimeout(res, 5));
    await new Promise((res) => setTimeout(res, 1200));
    r.sendTaskHeartbeat(token);
    await new Promise((res) => setTimeout(res, 1200));
    expect(alive.status).toBe('RUNNING');
    await alive.done;
    expect(alive.status).toBe('FAILED');
    expect(alive.error).toBe('Late');
  });

  it('retries matching errors up to MaxAttempts, then catches; States.TaskFailed never matches a timeout', async () => {
    let calls = 0;
    const r = runner(
      {
        StartAt: 'T',
        States: {
          T: {
            Type: 'Task',
            Resource: FN,
            Retry: [{ ErrorEquals: ['Flaky'], MaxAttempts: 2 }],
            Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.err', Next: 'Caught' }],
            End: true,
          },
          Caught: { Type: 'Pass', End: true },
        },
      },
      () => {
        calls++;
        throw new LambdaFunctionError('Flaky', 'try again');
      },
    );
    const e = r.startExecution('x5', '{}');
    await e.done;
    expect(calls).toBe(3);
    expect(JSON.parse(e.output!).err.Error).toBe('Flaky');
    expect(errorMatches(['States.TaskFailed'], 'States.Timeout')).toBe(false);
    expect(errorMatches(['States.TaskFailed'], 'Lambda.ServiceException')).toBe(true);
    expect(errorMatches(['States.ALL'], 'States.Runtime')).toBe(false);
  });

  it('starts an execution name once: the same input is idempotent, another input is refused', async () => {
    const r = runner({ StartAt: 'Wait', States: { Wait: waitTask({ End: true }) } }, () => null);
    const a = r.startExecution('same', '{"id":"1"}');
    expect(r.startExecution('same', '{"id":"1"}')).toBe(a);
    expect(() => r.startExecution('same', '{"id":"2"}')).toThrow(/Execution Already Exists/);
    r.stop(a.executionArn);
    await a.done;
    expect(a.status).toBe('ABORTED');
  });

  it('refuses definitions it cannot run faithfully', () => {
    expect(() =>
      runner({ StartAt: 'W', States: { W: { Type: 'Wait', Seconds: 1, End: true } } }, () => null),
    ).toThrow(/not supported/);
    expect(() =>
      runner(
        {
          StartAt: 'T',
          States: { T: { Type: 'Task', Resource: 'arn:aws:states:::sqs:sendMessage', End: true } },
        },
        () => null,
      ),
    ).toThrow(/not supported/);
  });

  it('times the whole execution out after the state machine TimeoutSeconds', async () => {
    const r = runner(
      { StartAt: 'Wait', TimeoutSeconds: 1, States: { Wait: waitTask({ End: true }) } },
      () => null,
    );
    const e = r.startExecution('x6', '{"id":"t"}');
    await e.done;
    expect(e.status).toBe('TIMED_OUT');
  });
});

describe('asl runner persistence (a restart resumes executions)', () => {
  const waitDefinition = (timeoutSeconds: number) => ({
    StartAt: 'Wait',
    States: {
      Wait: waitTask({
        TimeoutSeconds: timeoutSeconds,
        Catch: [{ ErrorEquals: ['States.Timeout'], ResultPath: '$.error', Next: 'Expired' }],
        Next: 'Done',
      }),
      Done: { Type: 'Succeed' },
      Expired: { Type: 'Pass', Result: 'expired', ResultPath: '$.outcome', End: true },
    },
  });

  function memoryStore() {
    const records = new Map<string, ExecutionRecord>();
    const persistence: ExecutionPersistence = {
      load: () => [...records.values()].map((r) => structuredClone(r)),
      save: (r) => records.set(r.name, structuredClone(r)),
    };
    return { records, persistence };
  }

  function persistedRunner(definition: Record<string, unknown>, persistence: ExecutionPersistence) {
    const invocations: any[] = [];
    const r = new StateMachineRunner({
      stateMachineArn: ARN,
      definition,
      invokeLambda: async (_arn, payload) => {
        invocations.push(payload);
        return null;
      },
      persistence,
    });
    return { r, invocations };
  }

  const settle = async (predicate: () => boolean) => {
    for (let i = 0; i < 200 && !predicate(); i++) await new Promise((res) => setTimeout(res, 10));
  };

  it('waits again for the same token after a restart, with the deadline it had, and the answer completes it', async () => {
    const { records, persistence } = memoryStore();
    const first = persistedRunner(waitDefinition(3600), persistence);
    first.r.startExecution('req1', JSON.stringify({ id: 'r1' }));
    await settle(() => first.invocations.length === 1 && records.get('req1')?.at?.wait?.invoked === true);
    const token = first.invocations[0].token as string;
    const saved = records.get('req1')!;
    expect(saved.status).toBe('RUNNING');
    expect(saved.at).toMatchObject({ state: 'Wait', wait: { token, invoked: true } });
    const deadline = saved.at!.wait!.timeoutAt!;
    expect(deadline - Date.now()).toBeGreaterThan(3590_000);
    first.r.close();
    // Closing detaches: the checkpoint still says RUNNING, not ABORTED.
    expect(records.get('req1')!.status).toBe('RUNNING');

    const second = persistedRunner(waitDefinition(3600), persistence);
    expect(() => second.r.sendTaskSuccess(token, '{}')).toThrow(SfnApiError); // not resumed yet
    expect(second.r.resume()).toBe(1);
    expect(second.invocations).toHaveLength(0); // the notified function is not invoked again
    expect(records.get('req1')!.at!.wait!.timeoutAt).toBe(deadline);
    second.r.sendTaskSuccess(token, JSON.stringify({ decision: 'approve' }));
    const e = second.r.describe(`${ARN.replace(':stateMachine:', ':execution:')}:req1`);
    await e.done;
    expect(e.status).toBe('SUCCEEDED');
    expect(JSON.parse(e.output!)).toMatchObject({ id: 'r1', answer: { decision: 'approve' } });
    expect(records.get('req1')).toMatchObject({ status: 'SUCCEEDED', tokens: { [token]: 'answered' } });
    expect(records.get('req1')!.at).toBeUndefined();

    // A third start knows the token was answered.
    const third = persistedRunner(waitDefinition(3600), persistence);
    expect(third.r.resume()).toBe(0);
    expect(() => third.r.sendTaskSuccess(token, '{}')).toThrow(/Task Does Not Exist/);
  });

  it('times a task out at once when its deadline passed while the runner was stopped', async () => {
    const { records, persistence } = memoryStore();
    const first = persistedRunner(waitDefinition(3600), persistence);
    first.r.startExecution('req2', JSON.stringify({ id: 'r2' }));
    await settle(() => records.get('req2')?.at?.wait?.invoked === true);
    first.r.close();
    const token = records.get('req2')!.at!.wait!.token;
    // The window ran out while stopped.
    const rec = records.get('req2')!;
    records.set('req2', {
      ...rec,
      at: { ...rec.at!, wait: { ...rec.at!.wait!, timeoutAt: Date.now() - 1000 } },
    });

    const second = persistedRunner(waitDefinition(3600), persistence);
    second.r.resume();
    const e = second.r.describe(`${ARN.replace(':stateMachine:', ':execution:')}:req2`);
    await e.done;
    expect(e.status).toBe('SUCCEEDED');
    expect(JSON.parse(e.output!)).toMatchObject({ outcome: 'expired', error: { Error: 'States.Timeout' } });
    expect(() => second.r.sendTaskSuccess(token, '{}')).toThrow(/Task Timed Out/);
    expect(records.get('req2')!.tokens[token]).toBe('timed_out');
  });

  it('re-enters the state a restart interrupted (the task is invoked again)', async () => {
    const { records, persistence } = memoryStore();
    records.set('req3', {
      executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:req3`,
      name: 'req3',
      input: '{"id":"r3"}',
      startDate: new Date().toISOString(),
      status: 'RUNNING',
      history: [{ at: new Date().toISOString(), type: 'ExecutionStarted' }],
      at: { state: 'Wait', input: { id: 'r3' } },
      tokens: {},
    });
    const second = persistedRunner(waitDefinition(3600), persistence);
    second.r.resume();
    await settle(() => second.invocations.length === 1);
    expect(second.invocations[0]).toMatchObject({ id: 'r3', token: expect.any(String) });
    second.r.sendTaskSuccess(second.invocations[0].token, '{}');
    await second.r.describe(`${ARN.replace(':stateMachine:', ':execution:')}:req3`).done;
    expect(records.get('req3')!.status).toBe('SUCCEEDED');
  });
});
