/**
 * Authorization with Cedar. The schema and the policy set are validated when loaded and
 * preparsed once; each decision is one (or two) stateful evaluations, nothing is parsed per request.
 *
 * Fast decisions (microseconds, not the Cedar call's hundreds): the policy set is split per action
 * into preparsed slices holding only the policies whose action scope can match (a policy whose scope
 * does not match is never satisfied and never errs, so a slice decides exactly as the whole set);
 * each call passes only the context attributes the slice's policies mention (anything they do not
 * name cannot change their outcome); and answers are memoised per engine on the exact inputs Cedar
 * sees (request, entity slice, trimmed context), so a repeated decision is a map lookup.
 *
 * Approval required is expressed in Cedar itself: a permit that holds only `when { context.approved }`.
 * `decideOperation` evaluates with `approved: false` (allow?), then with `approved: true`
 * (approval required?), otherwise deny. Forbids win in both evaluations, so a forbidden request can
 * never be approved into running.
 */
import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { WardenError } from './errors.js';
import { CEDAR_SCHEMA, CEDAR_SCHEMA_JSON_SHA256 } from './policy-schema.js';
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
  readonly type: 'Target' | 'Table' | 'Gateway' | 'Tool';
  readonly id: string;
  /** For a Table or a Tool: its Target. */
  readonly target?: string;
  /** For a Target: its kind (sql | aws | mcp). */
  readonly kind?: string;
  /** For a Tool: the upstream's tool name. */
  readonly name?: string;
  /** For a Tool: the call's top-level arguments, as Cedar tags. */
  readonly tags?: Readonly<Record<string, string>>;
}

export interface CedarAnswer {
  readonly allowed: boolean;
  readonly policies: readonly string[];
  readonly errors: readonly string[];
}

let preparsedCounter = 0;
/** Memoised answers per engine (a few KB each at most; the engine is replaced on policy change). */
const MAX_CACHED_ANSWERS = 10_000;

/** What one policy applies to and mentions, from Cedar's JSON form of it. */
interface PolicyFacts {
  readonly text: string;
  /**
   * The action ids its scope matches, or 'all'. (Warden's schema declares no action groups, so
   * `action in [A, B]` matches exactly A and B.)
   */
  readonly actions: ReadonlySet<string> | 'all';
  /** Its JSON (conditions included), for "does it mention X". */
  readonly json: string;
}

/**
 * A validated policy set as `policy push` stores it next to the texts: each policy's text, action
 * scope and JSON, and the hash of the schema it was validated against. A cold start whose schema
 * has the same hash serves it without converting or validating anything again (the two costliest
 * Cedar calls of a load); any other schema re-validates from the texts.
 */
export interface CompiledPolicies {
  readonly schemaSha256: string;
  /**
   * That schema in Cedar's JSON form: preparsing it is cheaper than the text on a cold start (no
   * schema parser to compile). Absent in forms written before it; then the text is preparsed.
   */
  readonly schemaJson?: cedar.SchemaJson<string>;
  readonly policies: Readonly<
    Record<string, { text: string; actions: readonly string[] | 'all'; json: string }>
  >;
}

const schemaHash = (schema: string) => createHash('sha256').update(schema).digest('hex');

/** How a compiled form's policies differ from `facts` (the sources parsed): [] when they are the same. */
function factsDifferences(facts: ReadonlyMap<string, PolicyFacts>, compiled: object): string[] {
  const out: string[] = [];
  const stored = compiled as Record<string, { text?: unknown; json?: unknown; actions?: unknown } | null>;
  for (const id of Object.keys(stored)) {
    if (!facts.has(id)) out.push(`compiled policy "${id}" is in no source`);
  }
  for (const [id, want] of facts) {
    const got = Object.hasOwn(stored, id) ? stored[id] : undefined;
    if (!got || typeof got !== 'object') {
      out.push(`policy "${id}" of the sources is missing from the compiled form`);
      continue;
    }
    if (got.text !== want.text) out.push(`policy "${id}": the compiled text is not the source's`);
    const wantActions = want.actions === 'all' ? 'all' : [...want.actions];
    if (JSON.stringify(got.actions) !== JSON.stringify(wantActions)) {
      out.push(`policy "${id}": the compiled action scope is not the source's`);
    }
    if (got.json !== want.json) out.push(`policy "${id}": the compiled JSON is not the source's`);
  }
  return out;
}

/** The policies that can apply to one action, preparsed as their own set. */
interface Slice {
  readonly setId: string;
  /** Top-level context attributes its policies mention, or 'all' when unsure. */
  readonly contextKeys: ReadonlySet<string> | 'all';
  readonly mentions: (word: string) => boolean;
}

/** A policy set with no policies: what request validation runs against. */
const EMPTY_SET = 'warden-empty';
let emptyPreparsed = false;
function preparseEmpty(): void {
  if (emptyPreparsed) return;
  const answer = cedar.preparsePolicySet(EMPTY_SET, { staticPolicies: {} });
  if (answer.type === 'failure') throw new PolicyValidationError(formatErrors(answer.errors));
  emptyPreparsed = true;
}

function policyFacts(text: string, answer: ReturnType<typeof cedar.policyToJson>): PolicyFacts {
  if (answer.type !== 'success') return { text, actions: 'all', json: text };
  const scope = answer.json.action as { op: string; entity?: { id?: string }; entities?: { id?: string }[] };
  const ids =
    scope.op === '=='
      ? [scope.entity?.id]
      : scope.op === 'in'
        ? scope.entities
          ? scope.entities.map((e) => e.id)
          : [scope.entity?.id]
        : undefined;
  const actions =
    ids && ids.every((id): id is string => typeof id === 'string') ? new Set(ids) : ('all' as const);
  return { text, actions, json: JSON.stringify(answer.json) };
}

function formatErrors(errors: readonly cedar.DetailedError[]): string[] {
  return errors.map((e) => (e.help ? `${e.message} (${e.help})` : e.message));
}

/** Splits policy texts into `{id: text}`, using each policy's `@id` annotation when present. */
export function splitPolicies(sources: readonly PolicySource[]): Record<string, string> {
  return Object.fromEntries([...parsePolicies(sources)].map(([id, facts]) => [id, facts.text]));
}

/**
 * Each policy by id (its `@id`, or `source#index`) with what it applies to. Cedar converts each
 * policy to JSON once; the id and the facts both come from that one conversion.
 */
function parsePolicies(sources: readonly PolicySource[]): Map<string, PolicyFacts> {
  const out = new Map<string, PolicyFacts>();
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
      if (out.has(id)) errors.push(`${source}: duplicate policy id "${id}"`);
      out.set(id, policyFacts(policy, json));
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
  private readonly facts: ReadonlyMap<string, PolicyFacts>;
  private readonly slices = new Map<string, Slice>();
  private readonly answers = new Map<string, CedarAnswer>();
  /** Schema check of a request, per shape (types, not values): the errors, [] when valid. */
  private readonly shapes = new Map<string, readonly string[]>();

  private readonly schemaSha256: string;
  /** The schema as preparsed: its text, or the JSON form a compiled set carried. */
  private readonly schemaForm: string | cedar.SchemaJson<string>;

  private constructor(
    version: string,
    setId: string,
    schemaName: string,
    facts: Map<string, PolicyFacts>,
    schemaSha256: string,
    schemaForm: string | cedar.SchemaJson<string>,
  ) {
    this.version = version;
    this.schemaSha256 = schemaSha256;
    this.schemaForm = schemaForm;
    this.policyIds = [...facts.keys()];
    this.setId = setId;
    this.schemaName = schemaName;
    this.facts = facts;
  }

  /**
   * Validates `policies` against `schema` (strict mode) and preparses both.
   * Throws PolicyValidationError with Cedar's messages; nothing is replaced on failure.
   */
  static load(schema: string, policies: readonly PolicySource[], version: string): PolicyEngine {
    // Cold start pays for every Cedar call here, so each input is parsed as few times as it can be:
    // the schema is checked by preparsing it (no separate parse), the policies are validated as one
    // set and preparsed per action on first use (the whole set is never preparsed on its own).
    const facts = parsePolicies(policies);
    const n = ++preparsedCounter;
    const setId = `warden-policies-${n}`;
    const schemaName = `warden-schema-${n}`;
    const schemaAnswer = cedar.preparseSchema(schemaName, schema);
    if (schemaAnswer.type === 'failure') {
      throw new PolicyValidationError(formatErrors(schemaAnswer.errors).map((m) => `schema: ${m}`));
    }
    const staticPolicies = Object.fromEntries([...facts].map(([id, f]) => [id, f.text]));
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
    preparseEmpty();
    return new PolicyEngine(version, setId, schemaName, facts, schemaHash(schema), schema);
  }

  /**
   * Serves a set compiled by `compiled()` of an engine that validated it against this very schema,
   * for `sources`, the texts stored beside it: undefined when the schema differs, the form is not
   * one this code wrote, or it is not what these sources compile to (then load() them, which
   * validates). The sources are always parsed (cheap, no validation): what is enforced is the
   * sources' policies, never a compiled text, scope or JSON that a write around push put beside
   * them. Only the validation is skipped; a policy that would have failed it can only make Cedar
   * err, and any evaluation error denies (decide()).
   */
  static fromCompiled(
    schema: string,
    compiled: unknown,
    version: string,
    sources: readonly PolicySource[],
    onMismatch?: (differences: readonly string[]) => void,
  ): PolicyEngine | undefined {
    const c = compiled as Partial<CompiledPolicies> | undefined;
    if (!c || c.schemaSha256 !== schemaHash(schema) || typeof c.policies !== 'object' || !c.policies)
      return undefined;
    const facts = parsePolicies(sources);
    const differences = factsDifferences(facts, c.policies);
    if (differences.length > 0) {
      onMismatch?.(differences);
      return undefined;
    }
    const n = ++preparsedCounter;
    const schemaName = `warden-schema-${n}`;
    // The JSON form of this very schema (it hashes to the known form), else the text.
    const json =
      c.schemaJson &&
      typeof c.schemaJson === 'object' &&
      schemaHash(JSON.stringify(c.schemaJson)) === CEDAR_SCHEMA_JSON_SHA256
        ? c.schemaJson
        : undefined;
    let form: string | cedar.SchemaJson<string> = schema;
    if (json && schema === CEDAR_SCHEMA && cedar.preparseSchema(schemaName, json).type === 'success')
      form = json;
    else {
      const schemaAnswer = cedar.preparseSchema(schemaName, schema);
      if (schemaAnswer.type === 'failure') {
        throw new PolicyValidationError(formatErrors(schemaAnswer.errors).map((m) => `schema: ${m}`));
      }
    }
    preparseEmpty();
    return new PolicyEngine(version, `warden-policies-${n}`, schemaName, facts, schemaHash(schema), form);
  }

  /** How a compiled form's `policies` differ from this set's own: [] when they are the same. */
  policyDifferences(compiledPolicies: object): string[] {
    return factsDifferences(this.facts, compiledPolicies);
  }

  /** This validated set in the form `fromCompiled` serves (what `policy push` stores). */
  compiled(): CompiledPolicies {
    const policies: Record<string, { text: string; actions: readonly string[] | 'all'; json: string }> = {};
    for (const [id, f] of this.facts) {
      policies[id] = { text: f.text, json: f.json, actions: f.actions === 'all' ? 'all' : [...f.actions] };
    }
    let schemaJson: cedar.SchemaJson<string> | undefined;
    if (typeof this.schemaForm !== 'string') schemaJson = this.schemaForm;
    else {
      const answer = cedar.schemaToJson(this.schemaForm);
      if (answer.type === 'success') schemaJson = answer.json;
    }
    return { schemaSha256: this.schemaSha256, ...(schemaJson ? { schemaJson } : {}), policies };
  }

  /** The preparsed slice of policies that can apply to `action` (built on first use). */
  private slice(action: string): Slice {
    let slice = this.slices.get(action);
    if (slice) return slice;
    const policies = [...this.facts].filter(([, f]) => f.actions === 'all' || f.actions.has(action));
    const setId = `${this.setId}/${action}`;
    const answer = cedar.preparsePolicySet(setId, {
      staticPolicies: Object.fromEntries(policies.map(([id, f]) => [id, f.text])),
    });
    if (answer.type === 'failure') throw new PolicyValidationError(formatErrors(answer.errors));
    const json = policies.map(([, f]) => f.json).join('\n');
    const seen = new Map<string, boolean>();
    const mentions = (word: string) => {
      let found = seen.get(word);
      if (found === undefined) seen.set(word, (found = json.includes(JSON.stringify(word))));
      return found;
    };
    // A policy that reads `context` as a whole (not one attribute) gets the whole context.
    const wholeContext = /"Var":"context"\}(?!,"attr")/.test(json.replace(/\s/g, ''));
    const contextKeys = wholeContext ? ('all' as const) : new Set<string>();
    slice = { setId, contextKeys, mentions };
    this.slices.set(action, slice);
    return slice;
  }

  /**
   * Whether `action`'s decision can depend on the caller's grants (`context.grants`): when no policy
   * that applies to the action mentions them, the grants need not be looked up at all.
   */
  usesGrants(action: string): boolean {
    return this.slice(action).mentions('grants');
  }

  /** One Cedar decision. Any evaluation failure is a deny. */
  authorize(
    principal: Principal,
    action: string,
    resource: ResourceRef,
    context: Record<string, cedar.CedarValueJson>,
  ): CedarAnswer {
    const slice = this.slice(action);
    const trimmed: Record<string, cedar.CedarValueJson> = {};
    for (const [key, value] of Object.entries(context)) {
      if (slice.contextKeys === 'all' || slice.mentions(key)) trimmed[key] = value;
    }
    const entities = entitiesFor(principal, resource);
    const request = {
      principal: { type: principal.type, id: principal.id },
      action: { type: 'Action', id: action },
      resource: { type: resource.type, id: resource.id },
      context: trimmed,
      entities,
    };
    // The request as built (whole context) must fit the schema, whatever the slice reads.
    const invalid = this.schemaErrors({ ...request, context });
    if (invalid.length > 0) return { allowed: false, policies: [], errors: invalid };
    const key = JSON.stringify(request);
    const cached = this.answers.get(key);
    if (cached) return cached;
    const answer = cedar.statefulIsAuthorized({ ...request, preparsedPolicySetId: slice.setId });
    let result: CedarAnswer;
    if (answer.type === 'failure') {
      result = { allowed: false, policies: [], errors: formatErrors(answer.errors) };
    } else {
      const { reason, errors } = answer.response.diagnostics;
      // Cedar skips a policy whose evaluation fails (an integer overflow, an extension function
      // refusing its argument: what validation cannot rule out), so a failing forbid would let a
      // permit through. Here a policy that cannot be evaluated denies, and it is named.
      result =
        errors.length > 0
          ? {
              allowed: false,
              policies: [...new Set(errors.map((e) => e.policyId))],
              errors: errors.map((e) => `${e.policyId}: ${e.error.message}`),
            }
          : { allowed: answer.response.decision === 'allow', policies: reason, errors: [] };
    }
    if (this.answers.size >= MAX_CACHED_ANSWERS) this.answers.clear();
    this.answers.set(key, result);
    return result;
  }

  /**
   * Cedar's request validation (strict, against the schema), remembered per request shape: the
   * same types in the same places validate the same way, whatever the values.
   */
  private schemaErrors(request: {
    principal: EntityUid;
    action: EntityUid;
    resource: EntityUid;
    context: Record<string, cedar.CedarValueJson>;
    entities: cedar.EntityJson[];
  }): readonly string[] {
    const shape = JSON.stringify(request, (_key, value: unknown) =>
      typeof value === 'number'
        ? 0
        : typeof value === 'string'
          ? ''
          : Array.isArray(value)
            ? value.slice(0, 1)
            : value,
    );
    // Entity types and ids are part of the shape (they decide which schema rules apply).
    const shapeKey = `${request.principal.type}|${request.action.id}|${request.resource.type}|${shape}`;
    let errors = this.shapes.get(shapeKey);
    if (errors === undefined) {
      const answer = cedar.statefulIsAuthorized({
        ...request,
        preparsedPolicySetId: EMPTY_SET,
        preparsedSchemaName: this.schemaName,
        validateRequest: true,
      });
      errors = answer.type === 'failure' ? formatErrors(answer.errors) : [];
      if (this.shapes.size >= MAX_CACHED_ANSWERS) this.shapes.clear();
      this.shapes.set(shapeKey, errors);
    }
    return errors;
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
    // When no policy for this action reads `approved`, approving could not change the answer.
    if (!forbidden && this.slice(action).mentions('approved')) {
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
  const person = principal.type === 'Agent' ? principal.onBehalfOf : undefined;
  const groups = new Set([...principal.groups, ...(person?.groups ?? [])]);
  const entities: cedar.EntityJson[] = [
    {
      uid: { type: principal.type, id: principal.id },
      attrs: {
        name: principal.name,
        ...(person ? { onBehalfOf: { __entity: { type: 'User', id: person.id } } } : {}),
      },
      parents: principal.groups.map((g) => ({ type: 'Group', id: g })),
    },
    ...(person
      ? [
          {
            uid: { type: 'User', id: person.id },
            attrs: { name: person.name },
            parents: person.groups.map((g) => ({ type: 'Group', id: g })),
          },
        ]
      : []),
    ...[...groups].map((g) => ({ uid: { type: 'Group', id: g }, attrs: {}, parents: [] })),
  ];
  if (resource.type === 'Tool') {
    entities.push(
      {
        uid: { type: 'Tool', id: resource.id },
        attrs: { name: resource.name ?? '' },
        parents: [{ type: 'Target', id: resource.target ?? '' }],
        tags: { ...(resource.tags ?? {}) },
      },
      { uid: { type: 'Target', id: resource.target ?? '' }, attrs: { kind: 'mcp' }, parents: [] },
    );
  } else if (resource.type === 'Table') {
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
