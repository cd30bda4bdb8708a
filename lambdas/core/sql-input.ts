/**
 * What a SQL request may carry before anything is recorded or run. Values that cannot be stored as
 * they were sent, or that PostgreSQL would read differently from the classifier, are bad input (400
 * naming what is wrong), never an outage: `12345678901234567890` is not an exact JavaScript number and
 * DynamoDB refuses it, `1e300` is beyond DynamoDB's number range, a NUL byte ends the statement for
 * the parser (a C string) but not for the database.
 */

/** DynamoDB numbers: up to 38 significant digits, magnitude from 1e-130 to under 1e126. */
const DYNAMODB_MAX = 1e126;
const DYNAMODB_MIN = 1e-130;

/** A decimal number as PostgreSQL's numeric input reads it (no NaN, no Infinity). */
const DECIMAL_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first character PostgreSQL cannot take in text, or that the parser and server would split on. */
export function badTextCharacter(text: string): string | undefined {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) return `a NUL byte (U+0000) at character ${nul + 1}, which PostgreSQL does not accept`;
  // A lone surrogate has no UTF-8 form: the parser and the wire would each encode it differently.
  const lone = LONE_SURROGATE.exec(text);
  if (lone) return `an unpaired UTF-16 surrogate at character ${lone.index + 1}, which is not valid UTF-8`;
  return undefined;
}

export interface ParameterInput {
  readonly name: string;
  readonly value: unknown;
  readonly typeHint?: string;
}

/** Why a parameter cannot be recorded and sent as given, or undefined when it can. */
export function parameterProblem(p: ParameterInput): string | undefined {
  const { value } = p;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'is not a finite number';
    if (Object.is(value, -0)) return 'is -0, which would be recorded and sent as 0; send 0';
    const magnitude = Math.abs(value);
    if (magnitude >= DYNAMODB_MAX || (magnitude !== 0 && magnitude < DYNAMODB_MIN))
      return 'is outside the number range Warden can record (1e-130 to 1e126); send it as a string with typeHint DECIMAL';
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return (
        `is an integer beyond what JSON numbers carry exactly (±${Number.MAX_SAFE_INTEGER}); ` +
        'send it as a string with typeHint DECIMAL'
      );
    return undefined;
  }
  if (typeof value === 'string') {
    const bad = badTextCharacter(value);
    if (bad) return `contains ${bad}`;
    if (p.typeHint === 'DECIMAL' && !DECIMAL_TEXT.test(value.trim()))
      return 'has typeHint DECIMAL but is not a decimal number (digits, an optional point and exponent)';
  }
  return undefined;
}
