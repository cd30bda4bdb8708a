/**
 * AWS SDK clients on the request path, minus work that does nothing.
 *
 * The SDK's logger middleware runs on every call and, before it calls the logger, filters the whole
 * input and output for sensitive members (a walk over every attribute of every item written). With
 * the default logger (NoOpLogger) that walk is thrown away. Warden never configures an SDK logger
 * (it logs its own JSON lines), so the middleware is removed from the clients it creates.
 */
interface SdkClient {
  readonly config: { readonly logger?: unknown };
  readonly middlewareStack: { remove(name: string): boolean };
}

/** Removes the logger middleware when the client's logger is the SDK's no-op one; returns the client. */
export function withoutNoOpLogging<C extends SdkClient>(client: C): C {
  const logger = client.config.logger as { constructor?: { name?: string } } | undefined;
  if (logger === undefined || logger.constructor?.name === 'NoOpLogger') {
    client.middlewareStack.remove('loggerMiddleware');
  }
  return client;
}
