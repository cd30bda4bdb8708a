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
// An agent may act on behalf of a person (token exchange's act claim, or a configured owner
// claim): policies can use either, e.g. \`principal has onBehalfOf && principal.onBehalfOf in
// Group::"engineers"\`. The person's groups are known when the token carries them.
entity Agent in [Group] {
  name: String,
  onBehalfOf?: User,
};
entity Target {
  kind: String,
};
entity Table in [Target];
// A tool of an upstream MCP server (id "target/tool"); its tags are the call's top-level
// arguments (strings as sent, other values as canonical JSON).
entity Tool in [Target] {
  name: String,
} tags String;
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

type McpFacts = {
  target: String,
  tool: String,
  // The call's arguments as canonical JSON (keys sorted), exactly as they will be sent.
  arguments: String,
  readOnlyHint: Bool,
  destructiveHint: Bool,
  openWorldHint: Bool,
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
  mcp?: McpFacts,
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

// Calls of upstream MCP tools, by what the tool's annotations (or the target's overrides) say.
action "mcp:read", "mcp:write", "mcp:destructive" appliesTo {
  principal: [User, Agent],
  resource: [Tool],
  context: OperationContext,
};

// Accept a changed upstream tool definition (and list the pins) of an MCP target.
action "manage_tools" appliesTo {
  principal: [User, Agent],
  resource: [Target],
  context: {},
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

// Make a new policy set active (warden policy push), decided by the set active before the push.
action "push_policy" appliesTo {
  principal: [User, Agent],
  resource: [Gateway],
  context: {},
};

action "audit" appliesTo {
  principal: [User, Agent],
  resource: [Gateway],
  context: {},
};
`;

/**
 * SHA-256 of `JSON.stringify` of Cedar's JSON form of CEDAR_SCHEMA (what `policy push` stores as
 * the compiled form's `schemaJson`). A cold start preparses a stored JSON form only when it hashes
 * to this, so a form written around push cannot swap in another schema; anything else preparses
 * the text. test/unit/policy.test.ts derives it again and fails when the schema changes.
 */
export const CEDAR_SCHEMA_JSON_SHA256 = '06b48fa955b3943b7853ffe3e41d793028db9450428ca179fdd72a67639bb838';
