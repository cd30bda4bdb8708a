/**
 * Database error messages echo data: `SELECT ssn::int FROM customers` fails with
 * `invalid input syntax for type integer: "123-45-6789"`, and a constraint violation's Detail holds
 * `Key (email)=(…)` or `Failing row contains (…)`. Passed through, that is a way round masking for a
 * caller who may only see masked values, and raw PII in the audit record. This removes the values
 * PostgreSQL quotes back (keeping identifiers, which say what is wrong) and then runs the target's
 * detectors over what is left.
 */

const VALUE_ECHOES: readonly [RegExp, string][] = [
  // `… for type integer: "v"`, `… for enum mood: "v"`, `date/time field value out of range: "v"`.
  [/(: )"(?:[^"]|"")*"/g, '$1"[redacted]"'],
  // Detail: Key (email)=(a@b.c) already exists. / Key (id)=(1) is not present in table "x".
  [/(Key \([^)]*\)=\()(?:[^()]|\([^()]*\))*(\))/g, '$1[redacted]$2'],
  // Detail: Failing row contains (1, a@b.c, …).
  [/(Failing row contains \()[\s\S]*?(\)\.?(?:\n|;|$))/g, '$1[redacted]$2'],
  // Detail: Token "v" is invalid. (json), invalid value "v" for "YYYY".
  [/((?:Token|invalid value) )"(?:[^"]|"")*"/gi, '$1"[redacted]"'],
];

export function redactDatabaseMessage(message: string, maskText: (text: string) => string): string {
  let out = message;
  for (const [pattern, replacement] of VALUE_ECHOES) out = out.replace(pattern, replacement);
  return maskText(out);
}
