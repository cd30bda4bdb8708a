/**
 * The approval workflow on Step Functions: StartExecution for a pending request, and the task
 * callbacks that answer its waiting Notify step. The local twin serves the same wire protocol
 * (AWS_ENDPOINT_URL_SFN), so this adapter is the one both worlds use.
 */
import {
  ExecutionAlreadyExists,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { WorkflowCallback } from '../core/approvals.js';
import type { ApprovalStarter } from '../core/requests.js';
import type { RequestRecord } from '../core/types.js';

let shared: SFNClient | undefined;
export function defaultSfnClient(): SFNClient {
  shared ??= new SFNClient({ maxAttempts: 3 });
  return shared;
}

/** The execution input the state machine expects (lib/constructs/approval-workflow.ts). */
export interface ApprovalExecutionInput {
  readonly requestId: string;
  readonly approvalWindowSeconds: number;
}

/** The request's own window: from its creation to its `expiresAt`, at least one second. */
export function approvalWindowSeconds(record: RequestRecord): number {
  if (!record.expiresAt) throw new Error(`request ${record.id} has no approval window`);
  const ms = Date.parse(record.expiresAt) - Date.parse(record.createdAt);
  return Math.max(1, Math.round(ms / 1000));
}

export class StepFunctionsWorkflow implements ApprovalStarter, WorkflowCallback {
  private readonly client: SFNClient;
  private readonly stateMachineArn: string;

  constructor(options: { stateMachineArn: string; client?: SFNClient }) {
    this.client = options.client ?? defaultSfnClient();
    this.stateMachineArn = options.stateMachineArn;
  }

  async start(record: RequestRecord): Promise<void> {
    const input: ApprovalExecutionInput = {
      requestId: record.id,
      approvalWindowSeconds: approvalWindowSeconds(record),
    };
    try {
      await this.client.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          // The name is the request id: a retried start can never create a second execution.
          name: record.id,
          input: JSON.stringify(input),
        }),
      );
    } catch (error) {
      // Same name and same input: the first start went through; a retry has nothing more to do.
      if (error instanceof ExecutionAlreadyExists) return;
      throw error;
    }
  }

  async sendTaskSuccess(taskToken: string, output: Record<string, unknown>): Promise<void> {
    await this.client.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
  }

  async sendTaskFailure(taskToken: string, error: string, cause?: string): Promise<void> {
    await this.client.send(
      new SendTaskFailureCommand({ taskToken, error, ...(cause !== undefined ? { cause } : {}) }),
    );
  }

  async sendTaskHeartbeat(taskToken: string): Promise<void> {
    await this.client.send(new SendTaskHeartbeatCommand({ taskToken }));
  }
}

/** Reads STATE_MACHINE_ARN once; undefined when the function was not bound to the workflow. */
export function workflowFromEnv(env: NodeJS.ProcessEnv = process.env): StepFunctionsWorkflow | undefined {
  const arn = env.STATE_MACHINE_ARN;
  return arn ? new StepFunctionsWorkflow({ stateMachineArn: arn }) : undefined;
}
