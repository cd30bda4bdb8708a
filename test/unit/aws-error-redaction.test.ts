/** AWS error messages must not carry input past masking (lambdas/core/aws-error-redaction.ts). */
import { describe, expect, it } from 'vitest';
import { redactAwsMessage } from '../../lambdas/core/aws-error-redaction.js';
import { createMasker } from '../../lambdas/core/masking/index.js';

const masker = createMasker({ hashKey: Buffer.from('k') });
const redact = (m: string) => redactAwsMessage(m, (t) => masker.maskText(t).text);

describe('AWS error redaction', () => {
  it.each([
    [
      'a number DynamoDB cannot read',
      'dynamodb:PutItem failed: ValidationException: The parameter cannot be converted to a numeric value: Jane Roe 583050905',
      'Jane Roe',
    ],
    [
      'a duplicate string set',
      'dynamodb:PutItem failed: ValidationException: One or more parameter values were invalid: Input collection [Jane Roe, Jane Roe] contains duplicates.',
      'Jane Roe',
    ],
    [
      'a duplicate binary set',
      'One or more parameter values were invalid: Input collection {"B":"SmFuZQ=="}of type BS contains duplicates.',
      'SmFuZQ==',
    ],
    [
      'the validation framework',
      "1 validation error detected: Value 'Jane Roe' at 'item.name' failed to satisfy constraint: Member must have length less than or equal to 5",
      'Jane Roe',
    ],
    [
      'a list in the validation framework',
      "1 validation error detected: Value [Jane Roe, x] at 'keys' failed to satisfy constraint: Member must have length 1",
      'Jane Roe',
    ],
    [
      'a Query-protocol parameter',
      'sqs:SendMessage failed: InvalidParameterValue: Value Jane Roe for parameter QueueUrl is invalid. Reason: bad.',
      'Jane Roe',
    ],
    [
      'an expression token',
      'Invalid UpdateExpression: Syntax error; token: "Jane", near: "SET Jane"',
      'Jane',
    ],
    ['an SSN no quoting hides', 'ValidationException: bad key 583-05-0905 in request', '583-05-0905'],
    ['an email', "Invalid bucket name 'jane.roe@example.org'", 'jane.roe@example.org'],
  ])('removes the value from %s', (_label, message, value) => {
    const out = redact(message);
    expect(out).not.toContain(value);
    expect(out).not.toBe(message);
  });

  it('keeps codes, member paths and what failed', () => {
    const out = redact(
      "dynamodb:PutItem failed: ValidationException: 1 validation error detected: Value 'x' at 'item.name' failed to satisfy constraint",
    );
    expect(out).toBe(
      "dynamodb:PutItem failed: ValidationException: 1 validation error detected: Value '[redacted]' at 'item.name' failed to satisfy constraint",
    );
    const denied =
      'STS AssumeRole into arn:aws:iam::123456789012:role/x failed: AccessDenied: not authorized to perform sts:AssumeRole';
    expect(redact(denied)).toBe(denied);
    expect(redact('dynamodb:GetItem failed: ResourceNotFoundException: Requested resource not found')).toBe(
      'dynamodb:GetItem failed: ResourceNotFoundException: Requested resource not found',
    );
  });

  it('is idempotent', () => {
    const once = redact("Value 'Jane' at 'a' failed; numeric value: Jane; token: \"Jane\"");
    expect(redact(once)).toBe(once);
  });
});
