/**
 * The approval workflow, defined once. AWS runs it as a Step Functions state machine; the local twin
 * runs the very definition this file synthesizes (lib/local/synth-definition.ts reads it back from
 * the template), so the two cannot drift.
 *
 *   Notify approvers (waitForTaskToken, timeout = the request's approval window)
 *     → Decision? ─ approve → Execute → Executed
 *                 ─ deny    → Record denied → Denied
 *                 ─ other   → Unknown decision → Record failure → Failed
 *   Notify: States.Timeout | States.HeartbeatTimeout → Record expired → Expired
 *   Notify, Execute: States.ALL → Record failure → Failed
 *
 * Execution input: `{ requestId: string, approvalWindowSeconds: number }` (execution name = request
 * id, so StartExecution retried never starts a second one). The notify function stores the task
 * token server-side and the API answers it with SendTaskSuccess `{ decision: 'approve'|'deny', … }`.
 */
import { Duration, Names, RemovalPolicy } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** State names: part of the contract with the local runner and with dashboards. */
export const APPROVAL_STATES = {
  notify: 'Notify approvers',
  decision: 'Decision?',
  execute: 'Execute',
  recordDenied: 'Record denied',
  recordExpired: 'Record expired',
  recordFailure: 'Record failure',
  unknownDecision: 'Unknown decision',
  executed: 'Executed',
  denied: 'Denied',
  expired: 'Expired',
  failed: 'Failed',
} as const;

/** Execute-function modes (the `mode` field of its event). */
export type ExecuteMode = 'execute' | 'deny' | 'expire' | 'fail';

/**
 * Lambda errors that mean the invocation did not run the function (throttling, the Lambda service
 * failing to accept it). Only these are retried for Execute: a statement that may have run is never
 * retried. `Lambda.ClientExecutionTimeoutException` is deliberately absent: the function may have run.
 * The execute handler also moves the request approved → running with a conditional write, so even a
 * duplicate invocation finds it running and does nothing.
 */
export const LAMBDA_NOT_INVOKED_ERRORS = [
  'Lambda.TooManyRequestsException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
] as const;

export interface ApprovalFunctions {
  readonly notify: lambda.IFunction;
  readonly execute: lambda.IFunction;
}

/** Builds the state graph inside `scope`; returns its start state. */
export function buildApprovalDefinition(scope: Construct, fns: ApprovalFunctions): sfn.IChainable {
  const requestId = sfn.JsonPath.stringAt('$.requestId');

  const notify = new tasks.LambdaInvoke(scope, APPROVAL_STATES.notify, {
    lambdaFunction: fns.notify,
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: sfn.TaskInput.fromObject({
      requestId,
      taskToken: sfn.JsonPath.taskToken,
      approvalWindowSeconds: sfn.JsonPath.numberAt('$.approvalWindowSeconds'),
    }),
    // The window is the request's own; the API refuses windows above maxApprovalWindowSeconds.
    taskTimeout: sfn.Timeout.at('$.approvalWindowSeconds'),
    // Nothing sends heartbeats during a multi-hour human wait, so a shorter heartbeat would expire
    // every approval early. The heartbeat equals the window: SendTaskHeartbeat serves the API as a
    // liveness probe of the token (TaskTimedOut = expired) and can never extend the window.
    heartbeatTimeout: sfn.Timeout.at('$.approvalWindowSeconds'),
    resultPath: '$.approval',
    retryOnServiceExceptions: false,
  });
  notify.addRetry({
    errors: [...LAMBDA_NOT_INVOKED_ERRORS],
    interval: Duration.seconds(2),
    maxAttempts: 4,
    backoffRate: 2,
  });

  const invokeExecute = (id: string, mode: ExecuteMode, withError: boolean): tasks.LambdaInvoke =>
    new tasks.LambdaInvoke(scope, id, {
      lambdaFunction: fns.execute,
      payload: sfn.TaskInput.fromObject({
        requestId,
        mode,
        ...(withError ? { error: sfn.JsonPath.objectAt('$.error') } : {}),
      }),
      resultSelector: { 'result.$': '$.Payload' },
      resultPath: '$.execution',
      retryOnServiceExceptions: false,
    });

  const execute = invokeExecute(APPROVAL_STATES.execute, 'execute', false);
  execute.addRetry({
    errors: [...LAMBDA_NOT_INVOKED_ERRORS],
    interval: Duration.seconds(2),
    maxAttempts: 4,
    backoffRate: 2,
  });

  // Recording a terminal state is idempotent (a conditional status update), so these may retry on
  // any failure before giving up.
  const recordRetry: sfn.RetryProps = {
    errors: [...LAMBDA_NOT_INVOKED_ERRORS, 'States.TaskFailed'],
    interval: Duration.seconds(2),
    maxAttempts: 5,
    backoffRate: 2,
  };
  const recordDenied = invokeExecute(APPROVAL_STATES.recordDenied, 'deny', false);
  recordDenied.addRetry(recordRetry);
  const recordExpired = invokeExecute(APPROVAL_STATES.recordExpired, 'expire', true);
  recordExpired.addRetry(recordRetry);
  const recordFailure = invokeExecute(APPROVAL_STATES.recordFailure, 'fail', true);
  recordFailure.addRetry(recordRetry);

  const failed = new sfn.Fail(scope, APPROVAL_STATES.failed, {
    error: 'Warden.RequestFailed',
    cause: 'the request failed; its record holds the reason',
  });
  recordFailure.next(failed);

  const unknownDecision = new sfn.Pass(scope, APPROVAL_STATES.unknownDecision, {
    result: sfn.Result.fromObject({
      Error: 'Warden.UnknownDecision',
      Cause: 'the approval answer carried neither approve nor deny',
    }),
    resultPath: '$.error',
  });
  unknownDecision.next(recordFailure);

  notify.addCatch(recordExpired, {
    errors: [sfn.Errors.TIMEOUT, 'States.HeartbeatTimeout'],
    resultPath: '$.error',
  });
  notify.addCatch(recordFailure, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
  execute.addCatch(recordFailure, { errors: [sfn.Errors.ALL], resultPath: '$.error' });

  const decisionPresent = sfn.Condition.isPresent('$.approval.decision');
  const decision = new sfn.Choice(scope, APPROVAL_STATES.decision)
    .when(
      sfn.Condition.and(decisionPresent, sfn.Condition.stringEquals('$.approval.decision', 'approve')),
      execute.next(new sfn.Succeed(scope, APPROVAL_STATES.executed)),
    )
    .when(
      sfn.Condition.and(decisionPresent, sfn.Condition.stringEquals('$.approval.decision', 'deny')),
      recordDenied.next(new sfn.Succeed(scope, APPROVAL_STATES.denied)),
    )
    .otherwise(unknownDecision);

  recordExpired.next(new sfn.Succeed(scope, APPROVAL_STATES.expired));
  return notify.next(decision);
}

export interface ApprovalWorkflowProps extends ApprovalFunctions {
  /** Longest approval window a request may ask for; the execution times out an hour after it. */
  readonly maxApprovalWindow: Duration;
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

export class ApprovalWorkflow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ApprovalWorkflowProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per log group.
      logGroupName: `/aws/vendedlogs/states/${Names.uniqueResourceName(this, { maxLength: 200 })}`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(buildApprovalDefinition(this, props)),
      timeout: props.maxApprovalWindow.plus(Duration.hours(1)),
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: sfn.LogLevel.ALL,
        // Execution data would put the task token (in Notify's parameters) into the logs.
        includeExecutionData: false,
      },
    });
  }
}
