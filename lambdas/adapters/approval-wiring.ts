/**
 * The approval workflow's adapters, read from the environment once at cold start: Step Functions
 * (STATE_MACHINE_ARN), the Approvals table (task tokens) and the Grants table. A function not bound
 * to one of them gets an adapter that fails loudly when used, rather than a silent no-op.
 */
import type { ApprovalHandleStore, WorkflowCallback } from '../core/approvals.js';
import type { GrantStore } from '../core/grants.js';
import type { ApprovalStarter, GrantLookup } from '../core/requests.js';
import { ApprovalsTable, GrantsTable, tableEnvVar } from '../../lib/tables.js';
import { DynamoApprovalHandleStore } from './approval-store.js';
import { DynamoGrantStore } from './grants-store.js';
import { workflowFromEnv } from './step-functions.js';

export interface ApprovalWiring {
  /** Starts the workflow for a pending request (absent when STATE_MACHINE_ARN is not set). */
  readonly approvals?: ApprovalStarter;
  /** Answers the waiting Notify step. */
  readonly workflow: WorkflowCallback;
  /** Task tokens, server-side, keyed by an opaque approval id. */
  readonly approvalHandles: ApprovalHandleStore;
  /** What Cedar sees as `context.grants`. */
  readonly grants?: GrantLookup;
  readonly grantStore?: GrantStore;
}

function unbound(what: string): never {
  throw new Error(`${what} is not configured for this function`);
}

export function approvalWiringFromEnv(env: NodeJS.ProcessEnv = process.env): ApprovalWiring {
  const sfn = workflowFromEnv(env);
  const approvalHandles: ApprovalHandleStore = env[tableEnvVar(ApprovalsTable)]
    ? new DynamoApprovalHandleStore({ tableName: env[tableEnvVar(ApprovalsTable)] })
    : {
        put: async () => unbound('the Approvals table'),
        byRequest: async () => unbound('the Approvals table'),
      };
  const grantStore = env[tableEnvVar(GrantsTable)]
    ? new DynamoGrantStore({ tableName: env[tableEnvVar(GrantsTable)] })
    : undefined;
  const workflow: WorkflowCallback = sfn ?? {
    sendTaskSuccess: async () => unbound('STATE_MACHINE_ARN'),
    sendTaskFailure: async () => unbound('STATE_MACHINE_ARN'),
    sendTaskHeartbeat: async () => unbound('STATE_MACHINE_ARN'),
  };
  return {
    ...(sfn ? { approvals: sfn } : {}),
    workflow,
    approvalHandles,
    ...(grantStore ? { grants: grantStore, grantStore } : {}),
  };
}
