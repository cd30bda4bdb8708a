export { WardenGateway, type WardenGatewayProps } from './warden-gateway.js';
export {
  GatewayFunction,
  WARDEN_BUNDLING,
  ESM_BANNER,
  WASM_FILES,
  type GatewayFunctionProps,
} from './gateway-function.js';
export { WardenTables } from './tables.js';
export { WardenKeys } from './keys.js';
export { WardenApi, API_ROUTES } from './api.js';
export {
  ApprovalWorkflow,
  buildApprovalDefinition,
  APPROVAL_STATES,
  LAMBDA_NOT_INVOKED_ERRORS,
} from './approval-workflow.js';
export { AuditLake, AUDIT_EXPORT_PREFIX } from './audit-lake.js';
export { Notifications } from './notifications.js';
export { WardenAlarms } from './alarms.js';
