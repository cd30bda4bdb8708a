/**
 * The Cedar schema Warden ships. Every policy set is validated against it (strict mode) before it
 * is accepted. `npx warden policy schema` prints it for editors and CI.
 */
export const CEDAR_SCHEMA = String.raw`// Warden's Cedar schema. Principals are Users and Agents in Groups (from the token's groups
// claim); resources are Targets, their Tables, and the Gateway itself (for auditors).
// Actions are operation classes plus approve, view_unmasked, request_access and audit.

entity Group;
entity User in [Group] {
  name: String,
};
entity Agent in [Group] {
  name: String,
};
entity Target {
  kind: String,
};
entity Table in [Target];
entity Gateway;

type SqlFacts = {
  statementTypes: Set<String>,
  tables: Set<String>,
  functions: Set<String>,
};

type AwsFacts = {
  service: String,
  iamAction: String,
  accessLevel: String,
  resources: Set<String>,
  region: String,
};

type OperationContext = {
  // False on the first evaluation; a request that is only allowed when this is true needs approval.
  approved: Bool,
  // Operation classes ("sql:write", "sql:ddl", ...) covered by an unexpired just-in-time grant.
  grants: Set<String>,
  justification: String,
  hasJustification: Bool,
  // Seconds since the epoch and the UTC hour, for time-of-day policies.
  now: Long,
  hourUtc: Long,
  sql?: SqlFacts,
  aws?: AwsFacts,
};

type AccessContext = {
  approved: Bool,
  level: String,
  durationSeconds: Long,
  justification: String,
  hasJustification: Bool,
  now: Long,
  hourUtc: Long,
};

action "sql:read", "sql:write", "sql:ddl", "sql:privilege", "sql:admin" appliesTo {
  principal: [User, Agent],
  resource: [Target],
  context: OperationContext,
};

action "aws:read", "aws:write", "aws:permissions" appliesTo {
  principal: [User, Agent],
  resource: [Target],
  context: OperationContext,
};

action "request_access" appliesTo {
  principal: [User, Agent],
  resource: [Target],
  context: AccessContext,
};

action "approve" appliesTo {
  principal: [User, Agent],
  resource: [Target],
  context: {},
};

action "view_unmasked" appliesTo {
  principal: [User, Agent],
  resource: [Target, Table],
  context: {},
};

action "audit" appliesTo {
  principal: [User, Agent],
  resource: [Gateway],
  context: {},
};
`;
