/**
 * What `warden policy push` signs, and functions verify, of a stored policy set: a raw write of the
 * Policies table (anyone with dynamodb:PutItem on it) cannot make a set active without a MAC only
 * the policy key makes. On AWS that key is a KMS HMAC key on which the pusher holds GenerateMac and
 * the functions VerifyMac only (lib/constructs/keys.ts); the local twin holds a stand-in key.
 *
 * The MAC covers the version, the time and pusher the set names, and the SHA-256 of its stored
 * form (sources and compiled form alike), so none of them can be changed, and one set's MAC does
 * not fit another. KMS MACs a message of at most 4 KB, hence the hash.
 */
import { createHash } from 'node:crypto';
import type { StoredPolicySet } from './ports.js';

/** The domain of the MAC: a MAC made for anything else under the same key never verifies here. */
export const POLICY_SET_MAC_CONTEXT = 'warden-policy-set/1';

/** The message the policy key MACs for `set`: a JSON array, so no field can run into the next. */
export function policySetMessage(set: Omit<StoredPolicySet, 'signature'>): string {
  return JSON.stringify([
    POLICY_SET_MAC_CONTEXT,
    set.version,
    set.updatedAt,
    set.updatedBy ?? null,
    createHash('sha256').update(set.policies, 'utf8').digest('hex'),
  ]);
}

/** Makes and checks MACs with the policy key (lambdas/adapters/signing.ts's Signer). */
export interface PolicySetMac {
  sign(data: string): Promise<string>;
  verify(data: string, mac: string): Promise<boolean>;
}

/** True only when `set` carries the policy key's MAC of exactly what it holds. */
export async function verifyPolicySet(mac: PolicySetMac, set: StoredPolicySet): Promise<boolean> {
  if (typeof set.signature !== 'string' || set.signature.length === 0) return false;
  return mac.verify(policySetMessage(set), set.signature);
}

/** `set` with the policy key's MAC of it. */
export async function signPolicySet(
  mac: PolicySetMac,
  set: Omit<StoredPolicySet, 'signature'>,
): Promise<StoredPolicySet> {
  return { ...set, signature: await mac.sign(policySetMessage(set)) };
}
