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

type Args = { request?: unknown; input?: unknown };
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
 * The SDK's own middleware named `name` on this client, as configured for it, with the options to
 * add a replacement under the same name, step, priority and tags; undefined when there is none.
 */
function sdkMiddleware(
  stack: Stack,
  name: string,
): { middleware: Middleware; options: Record<string, unknown> } | undefined {
  let found: { middleware: Middleware; options: Record<string, unknown> } | undefined;
  stack.applyToStack({
    add: (middleware, options) => {
      if (options.name === name) found = { middleware, options };
    },
    addRelativeTo: () => undefined,
  });
  if (!found) return undefined;
  // (smithy hands each entry over whole, its function included: that one is not ours to add.)
  const { middleware: _sdkFunction, ...options } = found.options;
  return { middleware: found.middleware, options };
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
  const sdkUserAgent = sdkMiddleware(stack, USER_AGENT_MIDDLEWARE);
  if (!sdkUserAgent) return client;
  const { middleware: sdk, options } = sdkUserAgent;
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

/** What the SDK's SigV4 auth scheme hands its signer function (the endpoint's first auth scheme). */
interface AuthSchemeLike {
  readonly name?: string;
  readonly signingName?: string;
  readonly signingRegion?: string;
}
type SignerFunction = (authScheme?: AuthSchemeLike) => Promise<unknown>;

/**
 * Keeps the signer the SDK builds for each auth scheme. With no signer configured, the SDK's SigV4
 * config builds a new `SignatureV4` on every call (spreading the whole client config into it), so
 * every request also re-derives the signing key (four HMACs) the new signer has not cached yet. The
 * signer reads the credentials provider, region and service it is given on every `sign` (AWS's
 * `AwsSdkSigV4Signer` passes the signing date, region and service per request), and caches keys
 * by date, region, service and credentials: one per auth scheme, kept, signs exactly as a fresh one
 * does. A signer that could not be built is not kept (the next call builds it again). Returns the
 * client; a client without a signer function is returned unchanged.
 */
export function withMemoizedSigner<C extends SdkClient>(client: C): C {
  const config = client.config as { signer?: unknown };
  const built = config.signer;
  if (typeof built !== 'function') return client;
  const sdkSigner = built as SignerFunction;
  const signers = new Map<string, Promise<unknown>>();
  config.signer = (authScheme?: AuthSchemeLike) => {
    const key = `${authScheme?.name}|${authScheme?.signingName}|${authScheme?.signingRegion}`;
    let signer = signers.get(key);
    if (!signer) {
      signer = sdkSigner(authScheme);
      signers.set(key, signer);
      signer.catch(() => signers.delete(key));
    }
    return signer;
  };
  return client;
}

/**
 * The request path's clients: no no-op logging walk, the user agent built once per command, one
 * signer per auth scheme.
 */
export function requestPathClient<C extends SdkClient>(client: C): C {
  return withMemoizedSigner(withMemoizedUserAgent(withoutNoOpLogging(client)));
}

/** The SDK's name for the serializer slot of its schema serde plugin (@smithy/core/schema). */
const SERIALIZER_MIDDLEWARE = 'serializerMiddleware';

/**
 * True when `value` is made only of what JSON says the same way the AWS JSON protocol does:
 * strings, finite numbers, booleans, null, plain arrays and plain objects (no bytes, dates, sets,
 * class instances, which the protocol writes its own way).
 */
function plainJson(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'undefined':
      return true;
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (const v of value) if (v === undefined || !plainJson(v, depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value)
        if (!plainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

/** A JSON protocol body as text: the SDK writes UTF-8 bytes (a Uint8Array) or, elsewhere, a string. */
function bodyText(body: unknown): string | undefined {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array)
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  return undefined;
}

/**
 * Sends the named commands' bodies as `JSON.stringify` of their input when the input is plain JSON
 * (AttributeValues already marshalled, no binary): the request path's transactions carry a few KB
 * of nested maps, which the SDK's schema serializer writes one character at a time (measured in a
 * governed read on the twin: ~0.03 ms less per transaction, JSON.stringify included). Everything else about the request is the SDK's own: its serializer runs on the same
 * input with the operation's list members empty, so the method, URL, headers, endpoint and the
 * idempotency token it fills in are exactly as sent today, and only the body text is replaced by
 * the same members written by JSON (member order may differ; the protocol does not order them).
 * Inputs with binary, dates or class instances, and every other command, go through the SDK's
 * serializer unchanged. Returns the client; one without the SDK's serializer is returned unchanged.
 */
export function withPlainJsonBodies<C extends SdkClient>(
  client: C,
  commands: Readonly<Record<string, readonly string[]>>,
): C {
  const stack = client.middlewareStack as unknown as Stack;
  const sdkSerializer = sdkMiddleware(stack, SERIALIZER_MIDDLEWARE);
  if (!sdkSerializer) return client;
  const { middleware: sdk, options } = sdkSerializer;
  const lists = new Map(Object.entries(commands));
  const plain: Middleware = (next, context) => {
    const sdkNext = sdk(next, context);
    const emptied = lists.get(context.commandName ?? '');
    if (!emptied) return sdkNext;
    return (args) => {
      const input = args.input as Record<string, unknown> | undefined;
      if (!input || !plainJson(input)) return sdkNext(args);
      const stub: Record<string, unknown> = { ...input };
      for (const member of emptied) if (member in stub) stub[member] = [];
      return sdk((out) => {
        const request = out.request as { body?: unknown } | undefined;
        const text = request ? bodyText(request.body) : undefined;
        // A body this does not know how to read: the SDK's own serializer on the real input.
        if (!request || text === undefined) return sdkNext(args);
        // The stub as the SDK wrote it, with what it filled in (the idempotency token), then the
        // lists back in.
        const written = JSON.parse(text) as Record<string, unknown>;
        for (const member of emptied) if (member in input) written[member] = input[member];
        request.body = Buffer.from(JSON.stringify(written), 'utf8');
        return next({ ...out, input });
      }, context)({ ...args, input: stub });
    };
  };
  stack.remove(SERIALIZER_MIDDLEWARE);
  stack.add(plain, { ...options, override: true });
  return client;
}
