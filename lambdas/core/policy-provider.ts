/**
 * Serves the active Cedar policy set to handlers: read from the PolicyStore, validated, preparsed,
 * and cached with a short TTL so a `policy push` takes effect within seconds without a redeploy.
 * A stored set that fails validation is ignored with a logged error and the previous one stays.
 */
import { ServiceUnavailableError } from './errors.js';
import { logJson } from './log.js';
import { PolicyEngine, type PolicySource } from './policy.js';
import { CEDAR_SCHEMA } from './policy-schema.js';
import type { PolicyStore, StoredPolicySet } from './ports.js';
import type { TrailReader } from './sessions.js';
import { POLICY_SESSION, UNRECORDED_POLICY_SET, type StoredTrailEvent } from './trail.js';

/**
 * The stored form of a policy set: its sources, and, given the engine that validated them, the
 * compiled form a cold start serves without validating again (see CompiledPolicies).
 */
export function encodePolicySources(sources: readonly PolicySource[], validated?: PolicyEngine): string {
  const list = sources.map(({ source, text }) => ({ source, text }));
  return JSON.stringify(validated ? { sources: list, compiled: validated.compiled() } : list);
}

function storedForm(set: StoredPolicySet): { sources: unknown; compiled?: unknown } {
  const parsed: unknown = JSON.parse(set.policies);
  if (Array.isArray(parsed)) return { sources: parsed };
  if (parsed && typeof parsed === 'object' && 'sources' in parsed) return parsed as { sources: unknown };
  throw new Error(`policy set ${set.version} is not a list of sources`);
}

/** The engine for a stored set: its compiled form when it fits this schema, else validated from its texts. */
export function engineFor(set: StoredPolicySet): PolicyEngine {
  const { compiled } = storedForm(set);
  const sources = decodePolicySources(set);
  const mismatch = (differences: readonly string[]) =>
    logJson({
      level: 'error',
      msg: "policy set's compiled form is not what its sources compile to (written around `policy push`?); validating the sources instead",
      version: set.version,
      differences,
    });
  return (
    (compiled === undefined
      ? undefined
      : PolicyEngine.fromCompiled(CEDAR_SCHEMA, compiled, set.version, sources, mismatch)) ??
    PolicyEngine.load(CEDAR_SCHEMA, sources, set.version)
  );
}

export function decodePolicySources(set: StoredPolicySet): PolicySource[] {
  const parsed = storedForm(set).sources;
  if (!Array.isArray(parsed)) throw new Error(`policy set ${set.version} is not a list of sources`);
  return parsed.map((p: { source?: unknown; text?: unknown }) => {
    if (typeof p.source !== 'string' || typeof p.text !== 'string') {
      throw new Error(`policy set ${set.version} has a malformed source`);
    }
    return { source: p.source, text: p.text };
  });
}

/**
 * How a stored set's compiled form differs from what its own sources compile to (`engine`, the
 * sources validated again): [] when it is exactly what `policy push` would have written. Functions
 * parse the sources on every load and serve a compiled form only when it matches them (else they
 * validate the sources), so such a form is never enforced; `policy verify` reports it all the same.
 */
export function compiledDifferences(set: StoredPolicySet, engine: PolicyEngine): string[] {
  const { compiled } = storedForm(set) as { compiled?: unknown };
  if (compiled === undefined) return [];
  const stored = compiled as { schemaSha256?: unknown; policies?: Record<string, unknown> } | null;
  if (!stored || typeof stored !== 'object') return ['the compiled form is not an object'];
  const expected = engine.compiled();
  if (stored.schemaSha256 !== expected.schemaSha256) return [];
  const out: string[] = [];
  const schemaJson = (compiled as { schemaJson?: unknown }).schemaJson;
  if (schemaJson !== undefined && JSON.stringify(schemaJson) !== JSON.stringify(expected.schemaJson)) {
    out.push("the compiled schema is not Warden's schema");
  }
  out.push(
    ...engine.policyDifferences(
      stored.policies && typeof stored.policies === 'object' ? stored.policies : {},
    ),
  );
  return out;
}

function sameStored(a: StoredPolicySet, b: StoredPolicySet | undefined): boolean {
  return (
    b !== undefined &&
    a.version === b.version &&
    a.policies === b.policies &&
    a.updatedAt === b.updatedAt &&
    a.updatedBy === b.updatedBy &&
    a.signature === b.signature
  );
}

/** Validates without storing: what `policy validate` and `policy push` run first. */
export function validatePolicySources(sources: readonly PolicySource[], version = 'candidate'): PolicyEngine {
  return PolicyEngine.load(CEDAR_SCHEMA, sources, version);
}

/**
 * The `policy_pushed` event that made `set` active (session `warden-policy`), and what is wrong when
 * there is none or it names another pusher than the set: what a set made active around
 * `warden policy push` (a raw write of the Policies table) shows. `warden policy verify` and the
 * functions' own look (auditActiveSet) both read it here.
 */
export function pushRecordOf(
  set: StoredPolicySet,
  events: readonly StoredTrailEvent[],
): { readonly pushed?: StoredTrailEvent; readonly finding?: string; readonly superseded?: boolean } {
  const pushes = events.filter((e) => e.type === 'policy_pushed');
  const versionOf = (e: StoredTrailEvent) => (e.detail as { version?: unknown } | undefined)?.version;
  let at = -1;
  pushes.forEach((e, i) => {
    if (versionOf(e) === set.version) at = i;
  });
  const pushed = at >= 0 ? pushes[at] : undefined;
  if (!pushed) {
    return {
      finding: `no policy_pushed event in the trail names ${set.version}: it was not written by warden policy push`,
    };
  }
  if (pushed.principal !== set.updatedBy) {
    return {
      pushed,
      finding: `the set names ${set.updatedBy ?? 'nobody'} as its pusher, the trail ${pushed.principal}`,
    };
  }
  // A signed set stays signed: a raw write can make an older one active again. The trail says
  // which push came last (the active pointer and its event are one transaction).
  const later = pushes.slice(at + 1).find((e) => versionOf(e) !== set.version);
  if (later) {
    return {
      pushed,
      superseded: true,
      finding: `${set.version} was replaced by ${String(versionOf(later))} (pushed by ${later.principalName ?? later.principal} at ${later.at}) and made active again around warden policy push`,
    };
  }
  return { pushed };
}

/**
 * Looks in the trail for the `policy_pushed` event of `set`. A set without one (or whose event
 * names another pusher) is still enforced as its sources say; this makes it seen within seconds (an
 * error line, which the stack's `PolicySetUnrecorded` alarm counts) instead of only when someone
 * runs `warden policy verify`. Answers the finding, undefined when there is none.
 */
export async function auditActiveSet(
  set: StoredPolicySet,
  trail: Pick<TrailReader, 'events'>,
  log: (entry: Record<string, unknown>) => void = logJson,
  options: {
    /**
     * The active version now: a set a later push replaced is only reported while it is still the
     * active one (else it was merely replaced after this function loaded it).
     */
    readonly activeVersion?: () => Promise<string | undefined>;
    /** Told when the set is such an older set made active again (PolicyProvider.reject). */
    readonly onReplayed?: (set: StoredPolicySet) => void;
  } = {},
): Promise<string | undefined> {
  const { finding, superseded } = pushRecordOf(set, await trail.events(POLICY_SESSION));
  if (finding && superseded && options.activeVersion && (await options.activeVersion()) !== set.version)
    return undefined;
  if (finding && superseded) options.onReplayed?.(set);
  if (finding) {
    log({
      level: 'error',
      msg: UNRECORDED_POLICY_SET,
      version: set.version,
      finding,
      hint: 'run `warden policy verify`, then push the set you mean with `warden policy push`',
    });
  }
  return finding;
}

/** A stored set whose signature is not the policy key's: not served. */
export class PolicySetSignatureError extends ServiceUnavailableError {
  constructor(
    readonly version: string,
    why = 'is not signed by warden policy push',
  ) {
    super(`no policy set can be served: the stored one (${version}) ${why}; nothing was run`);
    this.name = 'PolicySetSignatureError';
  }
}

export class PolicyProvider {
  private cached?: { engine: PolicyEngine; fetchedAt: number };
  private inflight?: Promise<PolicyEngine>;
  /** Served only while no policy set was ever stored; built on first need, not at cold start. */
  private emptyEngine?: PolicyEngine;
  /** The last stored set refused, as stored (not checked again until it changes), and why. */
  private refused?: StoredPolicySet;
  private refusedWhy?: string;
  /** The stored set the cached engine was built from. */
  private served?: StoredPolicySet;

  constructor(
    private readonly store: PolicyStore,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
    /** Told of each stored set when it is first loaded (not awaited; its failures are its own). */
    private readonly onLoad?: (set: StoredPolicySet) => void,
    /**
     * True when the set carries the policy key's MAC (verifyPolicySet). A set it refuses is never
     * served: the previous set stays, and with none every decision fails closed (503).
     */
    private readonly verify?: (set: StoredPolicySet) => Promise<boolean>,
  ) {}

  async engine(): Promise<PolicyEngine> {
    if (this.cached && this.now() - this.cached.fetchedAt < this.ttlMs) return this.cached.engine;
    this.inflight ??= this.refresh().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async refresh(): Promise<PolicyEngine> {
    const previous = this.cached?.engine;
    let engine = previous;
    try {
      const active = await this.store.getActive();
      if (active && active.version !== previous?.version && !sameStored(active, this.refused)) {
        // The signature check (a KMS round trip on AWS) is under way while Cedar loads the set;
        // nothing is served before it answers.
        const verified = this.verify?.(active).then(
          (valid) => valid,
          (cause: unknown) => {
            throw new ServiceUnavailableError(
              `the policy set's signature could not be checked (${String(cause)}); nothing was run`,
              cause,
            );
          },
        );
        verified?.catch(() => undefined);
        const loaded = engineFor(active);
        const stays = previous
          ? `${previous.version} stays active`
          : 'every decision is refused until a signed set is pushed';
        if (verified && !(await verified)) {
          this.refuse(
            active,
            `the set's signature is not the policy key's: it was not written by warden policy push; ${stays}`,
          );
          throw new PolicySetSignatureError(active.version);
        }
        // A signed set stays signed: an older one written back is not taken over a newer one.
        if (this.served && active.updatedAt < this.served.updatedAt) {
          this.refuse(
            active,
            `the set is older than the one served (${this.served.version}, pushed at ${this.served.updatedAt}): it was made active again around warden policy push; ${stays}`,
            'is older than the set pushed after it',
          );
          throw new PolicySetSignatureError(active.version, this.refusedWhy);
        }
        engine = loaded;
        this.served = active;
        this.onLoad?.(active);
      }
      if (!engine && active && sameStored(active, this.refused))
        throw new PolicySetSignatureError(active.version, this.refusedWhy);
      engine ??= this.emptyEngine ??= PolicyEngine.load(CEDAR_SCHEMA, [], 'none');
    } catch (error) {
      if (!previous) throw error; // no policy at all: fail closed, the caller answers 503
      if (error instanceof PolicySetSignatureError) {
        this.cached = { engine: previous, fetchedAt: this.now() };
        return previous;
      }
      logJson({ level: 'error', msg: 'policy refresh failed; keeping previous set', error: String(error) });
      engine = previous;
    }
    this.cached = { engine, fetchedAt: this.now() };
    return engine;
  }

  private refuse(set: StoredPolicySet, finding: string, why?: string): void {
    this.refused = set;
    this.refusedWhy = why;
    logJson({
      level: 'error',
      msg: UNRECORDED_POLICY_SET,
      version: set.version,
      finding,
      hint: 'run `warden policy verify`, then push the set you mean with `warden policy push`',
    });
  }

  /**
   * Stops serving `set` (the trail shows a later push replaced it: a signed set made active again
   * around push) when it is the one served: every decision is then refused (503) until another
   * set is pushed. The finding was logged by whoever found it.
   */
  reject(set: StoredPolicySet): void {
    if (!this.served || !sameStored(set, this.served)) return;
    this.refused = set;
    this.refusedWhy = 'was replaced by a later push and made active again around warden policy push';
    this.served = undefined;
    this.cached = undefined;
  }
}
