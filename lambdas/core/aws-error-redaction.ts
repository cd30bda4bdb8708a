/**
 * AWS error messages echo input, as database errors do: DynamoDB answers `{N: "Jane Roe"}` with
 * `The parameter cannot be converted to a numeric value: Jane Roe`, a duplicate string set with
 * `Input collection [a, a] contains duplicates.`, the validation framework with
 * `Value 'x' at 'item.ssn' failed to satisfy constraint`, SQS and EC2 with `Value x for parameter
 * Y is invalid`, expression parsers with `token: "x"`. Passed through, that is raw data in the
 * answer, the request record and the trail, whoever may see it. This removes the values AWS quotes
 * back (keeping member paths, codes and names of what failed) and then runs the target's
 * detectors over what is left — the same two steps as db-error-redaction.ts.
 */

const REDACTED = '[redacted]';

const VALUE_ECHOES: readonly [RegExp, string][] = [
  // `…cannot be converted to a numeric value: v` (to the end of the line or sentence list).
  [/(numeric value: )[^\n;]*/gi, `$1${REDACTED}`],
  // `Input collection [a, b] contains duplicates.` / `Input collection {"S":"a"}of type BS…`.
  [/(Input collection )(?:\[[^\n]*?\]|\{[^\n]*?\})(?=\s*(?:of type|contains))/gi, `$1${REDACTED}`],
  // `Value 'v' at 'path'`, `Value [v1, v2] at 'path'` (AWS's validation framework).
  [/(\bValue )(?:'(?:[^']|'')*'|\[[^\n]*?\]|"(?:[^"\\]|\\.)*")(?= at )/g, `$1'${REDACTED}'`],
  // `Value v for parameter P is invalid` (Query-protocol services: SQS, EC2, SNS…).
  [/(\bValue )(?!'\[redacted\]')[^\n]*?( for parameter )/g, `$1${REDACTED}$2`],
  // `token: "v"`, `near: "v"`, `: 'v'` — a quoted value after a colon or an equals sign.
  [/([:=] ?)"(?:[^"\\]|\\.)*"/g, `$1"${REDACTED}"`],
  [/([:=] ?)'(?:[^'\\]|\\.)*'/g, `$1'${REDACTED}'`],
];

export function redactAwsMessage(message: string, maskText: (text: string) => string): string {
  let out = message;
  for (const [pattern, replacement] of VALUE_ECHOES) out = out.replace(pattern, replacement);
  return maskText(out);
}
