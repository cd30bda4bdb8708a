/**
 * Serves the active Cedar policy set to handlers: read from the PolicyStore, validated, preparsed,
 * and cached with a short TTL so a `policy push` takes effect within seconds without a redeploy.
 * A stored set that fails validation is ignored with a logged error and the previous one stays.
 */
import { logJson } from './log.js';
import { PolicyEngine, type PolicySource } from './policy.js';
import { CEDAR_SCHEMA } from './policy-schema.js';
import type { PolicyStore, StoredPolicySet } from './ports.js';

export function encodePolicySources(sources: readonly PolicySource[]): string {
  return JSON.stringify(sources.map(({ source, text }) => ({ source, text })));
}

export function decodePolicySources(set: StoredPolicySet): PolicySource[] {
  const parsed: unknown = JSON.parse(set.policies);
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
  private readonly empty = PolicyEngine.load(CEDAR_SCHEMA, [], 'none');

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
    let engine = previous ?? this.empty;
    try {
      const active = await this.store.getActive();
      if (active && active.version !== previous?.version) {
        engine = PolicyEngine.load(CEDAR_SCHEMA, decodePolicySources(active), active.version);
      }
    } catch (error) {
      if (!previous) throw error; // no policy at all: fail closed, the caller answers 503
      logJson({ level: 'error', msg: 'policy refresh failed; keeping previous set', error: String(error) });
    }
    this.cached = { engine, fetchedAt: this.now() };
    return engine;
  }
}
