/**
 * Serves the active Cedar policy set to handlers: read from the PolicyStore, validated, preparsed,
 * and cached with a short TTL so a `policy push` takes effect within seconds without a redeploy.
 * A stored set that fails validation is ignored with a logged error and the previous one stays.
 */
import { logJson } from './log.js';
import { PolicyEngine, type PolicySource } from './policy.js';
import { CEDAR_SCHEMA } from './policy-schema.js';
import type { PolicyStore, StoredPolicySet } from './ports.js';

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
  return (
    PolicyEngine.fromCompiled(CEDAR_SCHEMA, compiled, set.version) ??
    PolicyEngine.load(CEDAR_SCHEMA, decodePolicySources(set), set.version)
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

/** Validates without storing: what `policy validate` and `policy push` run first. */
export function validatePolicySources(sources: readonly PolicySource[], version = 'candidate'): PolicyEngine {
  return PolicyEngine.load(CEDAR_SCHEMA, sources, version);
}

export class PolicyProvider {
  private cached?: { engine: PolicyEngine; fetchedAt: number };
  private inflight?: Promise<PolicyEngine>;
  /** Served only while no policy set was ever stored; built on first need, not at cold start. */
  private emptyEngine?: PolicyEngine;

  constructor(
    private readonly store: PolicyStore,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
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
      if (active && active.version !== previous?.version) {
        engine = engineFor(active);
      }
      engine ??= this.emptyEngine ??= PolicyEngine.load(CEDAR_SCHEMA, [], 'none');
    } catch (error) {
      if (!previous) throw error; // no policy at all: fail closed, the caller answers 503
      logJson({ level: 'error', msg: 'policy refresh failed; keeping previous set', error: String(error) });
      engine = previous;
    }
    this.cached = { engine, fetchedAt: this.now() };
    return engine;
  }
}
