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
