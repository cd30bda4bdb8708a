/**
 * Warden's error hierarchy. Every error a caller may see carries an HTTP status and a stable
 * code; only errors below 500 show their message (the error middleware maps them in one place).
 */
export class WardenError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(
    statusCode: number,
    code: string,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.statusCode = statusCode;
    this.code = code;
    this.details = options?.details;
  }
}

export class BadRequestError extends WardenError {
  constructor(message: string, details?: Record<string, unknown>, cause?: unknown) {
    super(400, 'bad_request', message, { details, cause });
  }
}

export class SqlParseError extends WardenError {
  constructor(message: string, position: number | undefined, cause?: unknown) {
    super(400, 'sql_parse_error', message, { details: { position }, cause });
  }
}

export class PayloadTooLargeError extends WardenError {
  constructor(message: string) {
    super(413, 'payload_too_large', message);
  }
}

export class UnsupportedMediaTypeError extends WardenError {
  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}

export class UnauthorizedError extends WardenError {
  constructor(message = 'a valid bearer token is required', cause?: unknown) {
    super(401, 'unauthorized', message, { cause });
  }
}

export class ForbiddenError extends WardenError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(403, 'forbidden', message, { details });
  }
}

export class PolicyDeniedError extends WardenError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(403, 'denied', message, { details });
  }
}

export class NotFoundError extends WardenError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

export class MethodNotAllowedError extends WardenError {
  constructor(message = 'method not allowed') {
    super(405, 'method_not_allowed', message);
  }
}

export class ConflictError extends WardenError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(409, code, message, { details });
  }
}

/** A dependency Warden needs before it may act (e.g. the audit store) is unavailable. */
export class ServiceUnavailableError extends WardenError {
  constructor(message: string, cause?: unknown) {
    super(503, 'service_unavailable', message, { cause });
  }
}

/** The store refused a conditional write: someone else changed the item first. */
export class ConditionFailedError extends Error {
  constructor(message = 'condition failed', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConditionFailedError';
  }
}

/** The database (or AWS) answered with an error for the statement itself. */
export class ExecutionError extends WardenError {
  constructor(statusCode: number, code: string, message: string, cause?: unknown) {
    super(statusCode, code, message, { cause });
  }
}

/**
 * What a caller is told of a 5xx: one fixed sentence per code, written here, never the error's own
 * message (which may quote a dependency: a Data API message naming a secret's ARN, an SDK error,
 * a stack). The details go to the (masked) log under the request id.
 */
const SERVER_ERROR_MESSAGES: Readonly<Record<string, string>> = {
  service_unavailable: 'a service Warden depends on is unavailable; nothing was run. Try again shortly',
  execute_unavailable: "Warden's execute function could not be reached; nothing was run. Try again shortly",
  execution_outcome_unknown:
    "Warden's execute function failed after it took the request; it may or may not have run: check the request before retrying",
  database_unavailable:
    'the database is unavailable; a write may or may not have been applied: check the request before retrying',
  database_resuming: 'the database is resuming from a pause; try again in a few seconds',
  database_timeout:
    'the database did not answer in time; a write may or may not have been applied: check the request before retrying',
  statement_timeout:
    'the statement timed out; a write may or may not have been applied: check the request before retrying',
  target_misconfigured:
    "Warden's configuration of this target is wrong; an operator must fix it (the details are in Warden's logs)",
  database_error: 'the database call failed; a write may or may not have been applied',
  execution_failed: 'the database call failed; a write may or may not have been applied',
  aws_error: 'the AWS call failed; a write may or may not have been applied',
  aws_unreachable: 'AWS could not be reached; a write may or may not have been applied',
  // Upstream MCP tools (issue 18): the model must know whether the call may have run.
  upstream_timeout:
    'the upstream MCP tool did not answer in time; it may or may not have run, and Warden did not retry it: check before calling it again',
  upstream_unavailable: 'the upstream MCP server could not be reached; the tool was not run',
  upstream_error: 'the upstream MCP server failed; the tool may or may not have run',
  upstream_malformed:
    'the upstream MCP server answered something that is not a tool result; it may or may not have run',
  upstream_auth_failed:
    "the upstream MCP server refused Warden's credentials; an operator must fix them (the details are in Warden's logs)",
  upstream_secret_missing:
    "Warden's credentials for this upstream MCP server are missing; an operator must fix them (the details are in Warden's logs)",
};

/** The message an answer may carry: the error's own below 500, a fixed one from 500 up. */
export function publicMessage(error: WardenError): string {
  if (error.statusCode < 500) return error.message;
  return SERVER_ERROR_MESSAGES[error.code] ?? 'Warden could not complete the request';
}
