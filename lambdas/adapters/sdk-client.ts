/**
 * AWS SDK clients on the request path, minus work that does nothing or repeats itself.
 *
 * The SDK's logger middleware runs on every call and, before it calls the logger, filters the whole
 * input and output for sensitive members (a walk over every attribute of every item written). With
 * the default logger (NoOpLogger) that walk is thrown away. Warden never configures an SDK logger
 * (it logs its own JSON lines), so the middleware is removed from the clients it creates.
 *
 * The SDK's user-agent middleware rebuilds the same two headers on every call (escaping each part of
 * the client's user agent with regular expressions, ~40 µs of CPU a call here).
 * `withMemoizedUserAgent` lets the SDK's own middleware build them once per command and set of
 * features, and sets the headers it built from then on.
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

type Args = { request?: unknown };
type Handler = (args: Args) => Promise<unknown>;
type Middleware = (next: Handler, context: UserAgentContext) => Handler;
interface UserAgentContext {
  readonly commandName?: string;
  readonly userAgent?: unknown;
  readonly __smithy_context?: { readonly features?: unknown };
  readonly __aws_sdk_context?: { readonly features?: unknown };
}
interface Stack {
  identify(): string[];
  remove(name: string): boolean;
  add(middleware: Middleware, options: Record<string, unknown>): void;
  /** Adds every entry, with its own function and options, to `to` (smithy's cloneTo). */
  applyToStack(to: {
    add(middleware: Middleware, options: { name?: string } & Record<string, unknown>): void;
    addRelativeTo(middleware: Middleware, options: { name?: string }): void;
  }): void;
}

/** The SDK's name for its user-agent middleware (@aws-sdk/core getUserAgentPlugin). */
const USER_AGENT_MIDDLEWARE = 'getUserAgentMiddleware';
const USER_AGENT_HEADERS = ['user-agent', 'x-amz-user-agent'] as const;
/** Commands × feature sets remembered per client (a client sends a handful). */
const MAX_MEMOIZED = 64;

function headersOf(request: unknown): Record<string, string> | undefined {
  const headers = (request as { headers?: unknown } | undefined)?.headers;
  return headers !== null && typeof headers === 'object' ? (headers as Record<string, string>) : undefined;
}

function appendFeatures(key: string, features: unknown): string {
  if (features === null || typeof features !== 'object') return `${key}|`;
  let out = `${key}|`;
  for (const [name, value] of Object.entries(features)) out += `${name}=${String(value)},`;
  return out;
}

/** What, besides the client's configuration, the SDK's middleware writes into the headers. */
function userAgentKey(context: UserAgentContext): string {
  let key = context.commandName ?? '';
  key = appendFeatures(key, context.__smithy_context?.features);
  key = appendFeatures(key, context.__aws_sdk_context?.features);
  return context.userAgent === undefined ? key : `${key}|${JSON.stringify(context.userAgent)}`;
}

/**
 * Replaces the client's user-agent middleware by one that runs the SDK's own middleware the first
 * time a command is sent with a given set of features (what it writes into the headers, besides the
 * client's configuration) and sets the headers it wrote on every later such call. A request that
 * already carries a user-agent header goes through the SDK's middleware as before (it appends to
 * it). Returns the client; a client without the middleware is returned unchanged.
 */
export function withMemoizedUserAgent<C extends SdkClient>(client: C): C {
  const stack = client.middlewareStack as unknown as Stack;
  // The SDK's own middleware function, as configured for this client.
  let sdkUserAgent: { middleware: Middleware; options: Record<string, unknown> } | undefined;
  stack.applyToStack({
    add: (middleware, options) => {
      if (options.name === USER_AGENT_MIDDLEWARE) sdkUserAgent = { middleware, options };
    },
    addRelativeTo: () => undefined,
  });
  if (!sdkUserAgent) return client;
  // (smithy hands each entry over whole, its function included: that one is not ours to add.)
  const { middleware: sdk, options: entry } = sdkUserAgent;
  const { middleware: _sdkFunction, ...options } = entry;
  const built = new Map<string, Readonly<Record<string, string>>>();
  const memoized: Middleware = (next, context) => (args) => {
    const headers = headersOf(args.request);
    const fresh =
      headers !== undefined &&
      headers['user-agent'] === undefined &&
      headers['x-amz-user-agent'] === undefined;
    const key = fresh ? userAgentKey(context) : '';
    const known = fresh ? built.get(key) : undefined;
    if (known) {
      Object.assign(headers!, known);
      return next(args);
    }
    return sdk((out) => {
      const set = headersOf(out.request);
      if (fresh && set) {
        const wrote: Record<string, string> = {};
        for (const h of USER_AGENT_HEADERS) if (set[h] !== undefined) wrote[h] = set[h];
        if (built.size < MAX_MEMOIZED) built.set(key, wrote);
      }
      return next(out);
    }, context)(args);
  };
  // Same name, step, priority and tags (among the build step's header setters, which do not read
  // each other's headers, it moves after the host and trace headers).
  stack.remove(USER_AGENT_MIDDLEWARE);
  stack.add(memoized, { ...options, override: true });
  return client;
}

/** The request path's clients: no no-op logging walk, the user agent built once per command. */
export function requestPathClient<C extends SdkClient>(client: C): C {
  return withMemoizedUserAgent(withoutNoOpLogging(client));
}
