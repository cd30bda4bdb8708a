/**
 * Authorization with Cedar. The schema and the policy set are validated when loaded and
 * preparsed once; each decision is one (or two) stateful evaluations, nothing is parsed per request.
 *
 * Approval required is expressed in Cedar itself: a permit that holds only `when { context.approved }`.
 * `decideOperation` evaluates with `approved: false` (allow?), then with `approved: true`
 * (approval required?), otherwise deny. Forbids win in both evaluations, so a forbidden request can
 * never be approved into running.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { WardenError } from './errors.js';
import type { Decision, Principal } from './types.js';

export class PolicyValidationError extends WardenError {
  readonly messages: readonly string[];
  constructor(messages: readonly string[]) {
    super(400, 'invalid_policy', `policy set refused: ${messages.join('; ')}`, { details: { messages } });
    this.messages = messages;
  }
}

export interface PolicySource {
  /** Where the text came from (a file name); prefixes ids of policies without an @id. */
  readonly source: string;
  readonly text: string;
}

export type EntityUid = { type: string; id: string };

export interface ResourceRef {
  readonly type: 'Target' | 'Table' | 'Gateway';
  readonly id: string;
  /** For a Table: its Target. */
  readonly target?: string;
  /** For a Target: its kind (sql | aws). */
  readonly kind?: string;
}

export interface CedarAnswer {
  readonly allowed: boolean;
  readonly policies: readonly string[];
  readonly errors: readonly string[];
}

let preparsedCounter = 0;
const SCHEMA_NAME_PREFIX = 'warden-schema-';

function formatErrors(errors: readonly cedar.DetailedError[]): string[] {
  return errors.map((e) => (e.help ? `${e.message} (${e.help})` : e.message));
}

/** Splits policy texts into `{id: text}`, using each policy's `@id` annotation when present. */
export function splitPolicies(sources: readonly PolicySource[]): Record<string, string> {
  const out: Record<string, string> = {};
  const errors: string[] = [];
  for (const { source, text } of sources) {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') {
      errors.push(...formatErrors(parts.errors).map((m) => `${source}: ${m}`));
      continue;
    }
    if (parts.policy_templates.length > 0) errors.push(`${source}: policy templates are not supported`);
    parts.policies.forEach((policy, index) => {
      const json = cedar.policyToJson(policy);
      const annotated = json.type === 'success' ? json.json.annotations?.id : undefined;
      const id = annotated ?? `${source}#${index}`;
      if (out[id] !== undefined) errors.push(`${source}: duplicate policy id "${id}"`);
      out[id] = policy;
    });
  }
  if (errors.length > 0) throw new PolicyValidationError(errors);
  return out;
}

export class PolicyEngine {
  readonly version: string;
  readonly policyIds: readonly string[];
  private readonly setId: string;
  private readonly schemaName: string;

  private constructor(version: string, policyIds: string[], setId: string, schemaName: string) {
    this.version = version;
    this.policyIds = policyIds;
    this.setId = setId;
    this.schemaName = schemaName;
  }

  /**
   * Validates `policies` against `schema` (strict mode) and preparses both.
   * Throws PolicyValidationError with Cedar's messages; nothing is replaced on failure.
   */
  static load(schema: string, policies: readonly PolicySource[], version: string): PolicyEngine {
    const staticPolicies = splitPolicies(policies);
    const schemaCheck = cedar.checkParseSchema(schema);
    if (schemaCheck.type === 'failure') {
      throw new PolicyValidationError(formatErrors(schemaCheck.errors).map((m) => `schema: ${m}`));
    }
    const validation = cedar.validate({
      schema,
      policies: { staticPolicies },
      validationSettings: { mode: 'strict' },
    });
    if (validation.type === 'failure') throw new PolicyValidationError(formatErrors(validation.errors));
    if (validation.validationErrors.length > 0) {
      throw new PolicyValidationError(
        validation.validationErrors.map((e) => `${e.policyId}: ${formatErrors([e.error])[0]}`),
      );
    }
    const n = ++preparsedCounter;
    const setId = `warden-policies-${n}`;
    const schemaName = `${SCHEMA_NAME_PREFIX}${n}`;
    const schemaAnswer = cedar.preparseSchema(schemaName, schema);
    if (schemaAnswer.type === 'failure') throw new PolicyValidationError(formatErrors(schemaAnswer.errors));
    const setAnswer = cedar.preparsePolicySet(setId, { staticPolicies });
    if (setAnswer.type === 'failure') throw new PolicyValidationError(formatErrors(setAnswer.errors));
    return new PolicyEngine(version, Object.keys(staticPolicies), setId, schemaName);
  }

  /** One Cedar evaluation. Any evaluation failure is a deny. */
  authorize(
    principal: Principal,
    action: string,
    resource: ResourceRef,
    context: Record<string, cedar.CedarValueJson>,
  ): CedarAnswer {
    const answer = cedar.statefulIsAuthorized({
      principal: { type: principal.type, id: principal.id },
      action: { type: 'Action', id: action },
      resource: { type: resource.type, id: resource.id },
      context,
      entities: entitiesFor(principal, resource),
      preparsedPolicySetId: this.setId,
      preparsedSchemaName: this.schemaName,
      validateRequest: true,
    });
    if (answer.type === 'failure') {
      return { allowed: false, policies: [], errors: formatErrors(answer.errors) };
    }
    const { decision, diagnostics } = answer.response;
    return {
      allowed: decision === 'allow',
      policies: diagnostics.reason,
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
    };
  }

  /**
   * The three-way decision for an operation: allow, approval required, or deny.
   * `context` must not contain `approved`; it is set here.
   */
  decideOperation(
    principal: Principal,
    action: string,
    resource: ResourceRef,
    context: Record<string, cedar.CedarValueJson>,
  ): Decision {
    const first = this.authorize(principal, action, resource, { ...context, approved: false });
    if (first.allowed) return this.decision('allow', action, first);
    const forbidden = first.policies.length > 0; // a deny with reasons means a forbid matched
    if (!forbidden) {
      const second = this.authorize(principal, action, resource, { ...context, approved: true });
      if (second.allowed) return this.decision('approval_required', action, second);
    }
    return this.decision('deny', action, first);
  }

  /** Re-check of an approved operation right before it runs. */
  decideApproved(
    principal: Principal,
    action: string,
    resource: ResourceRef,
    context: Record<string, cedar.CedarValueJson>,
  ): Decision {
    const answer = this.authorize(principal, action, resource, { ...context, approved: true });
    return this.decision(answer.allowed ? 'allow' : 'deny', action, answer);
  }

  private decision(outcome: Decision['outcome'], action: string, answer: CedarAnswer): Decision {
    return {
      outcome,
      action,
      determiningPolicies: answer.policies,
      errors: answer.errors,
      policyVersion: this.version,
    };
  }
}

function entitiesFor(principal: Principal, resource: ResourceRef): cedar.EntityJson[] {
  const entities: cedar.EntityJson[] = [
    {
      uid: { type: principal.type, id: principal.id },
      attrs: { name: principal.name },
      parents: principal.groups.map((g) => ({ type: 'Group', id: g })),
    },
    ...principal.groups.map((g) => ({ uid: { type: 'Group', id: g }, attrs: {}, parents: [] })),
  ];
  if (resource.type === 'Table') {
    entities.push(
      {
        uid: { type: 'Table', id: resource.id },
        attrs: {},
        parents: [{ type: 'Target', id: resource.target ?? '' }],
      },
      {
        uid: { type: 'Target', id: resource.target ?? '' },
        attrs: { kind: resource.kind ?? 'sql' },
        parents: [],
      },
    );
  } else if (resource.type === 'Target') {
    entities.push({
      uid: { type: 'Target', id: resource.id },
      attrs: { kind: resource.kind ?? 'sql' },
      parents: [],
    });
  } else {
    entities.push({ uid: { type: 'Gateway', id: resource.id }, attrs: {}, parents: [] });
  }
  return entities;
}
