import { beforeAll, describe, expect, it } from 'vitest';
import { APPROVAL_STATES, LAMBDA_NOT_INVOKED_ERRORS } from '../../lib/constructs/approval-workflow.js';
import {
  APPROVAL_FUNCTION_ARNS,
  approvalFunctionRole,
  synthApprovalDefinitionWithSource,
} from '../../lib/local/synth-definition.js';

type State = Record<string, any>;
let asl: { StartAt: string; TimeoutSeconds: number; States: Record<string, State> };
let templateDefinition: unknown;

beforeAll(async () => {
  const synthesized = await synthApprovalDefinitionWithSource();
  asl = synthesized.definition as typeof asl;
  templateDefinition = synthesized.templateDefinition;
});

const S = APPROVAL_STATES;

describe('approval state machine definition (as synthesized)', () => {
  it('is read from the template, not a hand copy', () => {
    expect(JSON.stringify(templateDefinition)).toContain('Fn::Join');
    expect(asl.StartAt).toBe(S.notify);
    expect(asl.TimeoutSeconds).toBe(7 * 24 * 3600 + 3600);
  });

  it('waits for a task token in Notify, timing out with the request’s approval window', () => {
    const notify = asl.States[S.notify];
    expect(notify.Type).toBe('Task');
    expect(notify.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
    expect(approvalFunctionRole(notify.Parameters.FunctionName)).toBe('notify');
    expect(notify.Parameters.Payload).toEqual({
      'requestId.$': '$.requestId',
      'taskToken.$': '$$.Task.Token',
      'approvalWindowSeconds.$': '$.approvalWindowSeconds',
    });
    expect(notify.TimeoutSecondsPath).toBe('$.approvalWindowSeconds');
    expect(notify.HeartbeatSecondsPath).toBe('$.approvalWindowSeconds');
    expect(notify.ResultPath).toBe('$.approval');
    expect(notify.Next).toBe(S.decision);
  });

  it('records expiry on a timeout and failure on anything else', () => {
    const catches = asl.States[S.notify].Catch as Array<{
      ErrorEquals: string[];
      Next: string;
      ResultPath: string;
    }>;
    expect(catches[0]).toEqual({
      ErrorEquals: ['States.Timeout', 'States.HeartbeatTimeout'],
      Next: S.recordExpired,
      ResultPath: '$.error',
    });
    expect(catches[1]).toEqual({ ErrorEquals: ['States.ALL'], Next: S.recordFailure, ResultPath: '$.error' });
    expect(asl.States[S.recordExpired].Parameters.Payload).toEqual({
      'requestId.$': '$.requestId',
      mode: 'expire',
      'error.$': '$.error',
    });
    expect(asl.States[S.recordExpired].Next).toBe(S.expired);
    expect(asl.States[S.expired].Type).toBe('Succeed');
  });

  it('chooses on the decision, guarding against a missing one', () => {
    const choice = asl.States[S.decision];
    expect(choice.Type).toBe('Choice');
    const byNext = Object.fromEntries(choice.Choices.map((c: State) => [c.Next, c.And]));
    expect(byNext[S.execute]).toEqual([
      { Variable: '$.approval.decision', IsPresent: true },
      { Variable: '$.approval.decision', StringEquals: 'approve' },
    ]);
    expect(byNext[S.recordDenied]).toEqual([
      { Variable: '$.approval.decision', IsPresent: true },
      { Variable: '$.approval.decision', StringEquals: 'deny' },
    ]);
    expect(choice.Default).toBe(S.unknownDecision);
    expect(asl.States[S.unknownDecision].Next).toBe(S.recordFailure);
  });

  it('executes through the execute function and retries only when Lambda did not run it', () => {
    const execute = asl.States[S.execute];
    expect(execute.Resource).toBe('arn:aws:states:::lambda:invoke');
    expect(execute.Parameters.FunctionName).toBe(APPROVAL_FUNCTION_ARNS.execute);
    expect(execute.Parameters.Payload).toEqual({ 'requestId.$': '$.requestId', mode: 'execute' });
    expect(execute.Retry).toHaveLength(1);
    expect(execute.Retry[0].ErrorEquals).toEqual([...LAMBDA_NOT_INVOKED_ERRORS]);
    expect(execute.Retry[0].ErrorEquals).not.toContain('States.TaskFailed');
    expect(execute.Retry[0].ErrorEquals).not.toContain('Lambda.ClientExecutionTimeoutException');
    expect(execute.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], Next: S.recordFailure, ResultPath: '$.error' },
    ]);
    expect(execute.Next).toBe(S.executed);
  });

  it('records denial and failure through the execute function, failing the execution on failure', () => {
    expect(asl.States[S.recordDenied].Parameters.Payload).toEqual({
      'requestId.$': '$.requestId',
      mode: 'deny',
    });
    expect(asl.States[S.recordDenied].Next).toBe(S.denied);
    expect(asl.States[S.recordFailure].Parameters.Payload).toEqual({
      'requestId.$': '$.requestId',
      mode: 'fail',
      'error.$': '$.error',
    });
    expect(asl.States[S.recordFailure].Next).toBe(S.failed);
    expect(asl.States[S.failed].Type).toBe('Fail');
  });

  it('uses only the state types the local runner supports', () => {
    const types = new Set(Object.values(asl.States).map((s) => s.Type));
    for (const t of types) expect(['Task', 'Choice', 'Pass', 'Succeed', 'Fail']).toContain(t);
  });
});
