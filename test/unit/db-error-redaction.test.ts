/** Database error messages must not carry data past masking (lambdas/core/db-error-redaction.ts). */
import { describe, expect, it } from 'vitest';
import { redactDatabaseMessage } from '../../lambdas/core/db-error-redaction.js';
import { createMasker } from '../../lambdas/core/masking/index.js';

const masker = createMasker({ hashKey: Buffer.from('k') });
const redact = (m: string) => redactDatabaseMessage(m, (t) => masker.maskText(t).text);

describe('database error redaction', () => {
  it.each([
    [
      'a cast echoing an SSN',
      'ERROR: invalid input syntax for type integer: "363-94-5461"; SQLState: 22P02',
      '363-94-5461',
    ],
    [
      'a cast echoing an email',
      'ERROR: invalid input syntax for type integer: "joseph.j210@example.net"; SQLState: 22P02',
      'joseph.j210@example.net',
    ],
    [
      'a cast echoing a name no detector knows',
      'ERROR: invalid input syntax for type integer: "Joseph Johnson"; SQLState: 22P02',
      'Joseph Johnson',
    ],
    [
      'a unique violation',
      'ERROR: duplicate key value violates unique constraint "c_email"\n  Detail: Key (email)=(a.b@example.com) already exists.; SQLState: 23505',
      'a.b@example.com',
    ],
    [
      'a check violation',
      'ERROR: new row violates check constraint "c"\n  Detail: Failing row contains (1, Joseph Johnson, 4111 1111 1111 1111).; SQLState: 23514',
      'Joseph Johnson',
    ],
    [
      'an enum value',
      'ERROR: invalid input value for enum mood: "Joseph secret"; SQLState: 22P02',
      'Joseph secret',
    ],
    [
      'a JSON token',
      'ERROR: invalid input syntax for type json\n  Detail: Token "Joseph" is invalid.; SQLState: 22P02',
      'Joseph',
    ],
  ])('removes the value from %s', (_label, message, value) => {
    const out = redact(message);
    expect(out).not.toContain(value);
    expect(out).toMatch(/SQLState: \w{5}$/);
  });

  it('keeps identifiers and the reason, which tell the caller what to fix', () => {
    const m =
      'ERROR: column "ssnn" does not exist\n  Hint: Perhaps you meant to reference the column "customers.ssn".; SQLState: 42703';
    expect(redact(m)).toContain('column "ssnn" does not exist');
    expect(redact('ERROR: permission denied for table customers; SQLState: 42501')).toBe(
      'ERROR: permission denied for table customers; SQLState: 42501',
    );
  });
});
