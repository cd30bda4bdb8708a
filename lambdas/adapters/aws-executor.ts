/**
 * The AWS executor: STS AssumeRole into the target's role with the request's inline session policy
 * (900 s, SourceIdentity, session tags), then the one call through the service's own SDK client,
 * loaded only when a call to that service is made.
 *
 * Endpoints: STS honours AWS_ENDPOINT_URL_STS (or WARDEN_AWS_ENDPOINT_URL_STS). The service clients
 * take WARDEN_AWS_ENDPOINT_URL_<SERVICE> (e.g. WARDEN_AWS_ENDPOINT_URL_DYNAMODB) and deliberately
 * NOT AWS_ENDPOINT_URL_<SERVICE>: on the local twin the gateway's own tables use the plain DynamoDB
 * endpoint while governed calls go through the enforcing endpoint. Twin-only overrides.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NormalizedSchema } from '@smithy/core/schema';
import type { AwsCall, AwsCallResult, AwsExecutor } from '../core/aws-requests.js';
import { BadRequestError, ExecutionError, WardenError } from '../core/errors.js';

interface SdkModule {
  readonly [name: string]: unknown;
}

/**
 * Service key (IAM prefix) → its SDK client, imported on first use. Adding a service: one line
 * here and its rules in lambdas/core/classify/aws-actions.ts.
 */
export const SERVICE_CLIENTS: Readonly<Record<string, { load: () => Promise<SdkModule>; client: string }>> = {
  s3: { load: () => import('@aws-sdk/client-s3'), client: 'S3Client' },
  dynamodb: { load: () => import('@aws-sdk/client-dynamodb'), client: 'DynamoDBClient' },
  ec2: { load: () => import('@aws-sdk/client-ec2'), client: 'EC2Client' },
  lambda: { load: () => import('@aws-sdk/client-lambda'), client: 'LambdaClient' },
  logs: { load: () => import('@aws-sdk/client-cloudwatch-logs'), client: 'CloudWatchLogsClient' },
  ecs: { load: () => import('@aws-sdk/client-ecs'), client: 'ECSClient' },
};

type Command = { schema?: unknown[] };
type CommandCtor = new (input: unknown) => Command;
type ClientCtor = new (config: Record<string, unknown>) => {
  send(command: Command): Promise<Record<string, unknown>>;
  destroy(): void;
};

export interface AwsExecutorOptions {
  /** @default a client from the environment (AWS_ENDPOINT_URL_STS / WARDEN_AWS_ENDPOINT_URL_STS) */
  readonly sts?: STSClient;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

const MAX_DEPTH = 32;

export function createAwsExecutor(options: AwsExecutorOptions = {}): AwsExecutor {
  const env = options.env ?? process.env;
  const stsEndpoint = env.WARDEN_AWS_ENDPOINT_URL_STS ?? env.AWS_ENDPOINT_URL_STS;
  let sts = options.sts;
  const stsClient = (): STSClient =>
    (sts ??= new STSClient({ ...(stsEndpoint ? { endpoint: stsEndpoint } : {}), maxAttempts: 2 }));
  const endpointFor = (service: string): string | undefined =>
    env[`WARDEN_AWS_ENDPOINT_URL_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];

  async function operation(
    service: string,
    action: string,
  ): Promise<{ client: ClientCtor; command: CommandCtor }> {
    const entry = Object.hasOwn(SERVICE_CLIENTS, service) ? SERVICE_CLIENTS[service] : undefined;
    if (!entry) throw new BadRequestError(`no SDK client is wired for service "${service}"`);
    const mod = await entry.load();
    const command = Object.hasOwn(mod, `${action}Command`) ? mod[`${action}Command`] : undefined;
    if (typeof command !== 'function' || !/^[A-Z][A-Za-z0-9]*$/.test(action)) {
      throw new BadRequestError(`the ${service} SDK has no operation "${action}"`);
    }
    return { client: mod[entry.client] as ClientCtor, command: command as CommandCtor };
  }

  async function prepared(service: string, action: string, input: Readonly<Record<string, unknown>>) {
    const op = await operation(service, action);
    const schema = new op.command({}).schema;
    if (!Array.isArray(schema) || schema.length < 5) throw new Error(`no schema for ${service}:${action}`);
    const shape = NormalizedSchema.of(schema[4] as never);
    return { ...op, input: conform(shape, input, 'input', 0) as Record<string, unknown> };
  }

  return {
    async check(service, action, input) {
      await prepared(service, action, input);
    },

    async call(call: AwsCall): Promise<AwsCallResult> {
      const op = await prepared(call.service, call.action, call.input);
      let creds;
      try {
        const out = await stsClient().send(
          new AssumeRoleCommand({
            RoleArn: call.roleArn,
            RoleSessionName: call.identity.roleSessionName,
            SourceIdentity: call.identity.sourceIdentity,
            Tags: [...call.identity.tags],
            Policy: call.sessionPolicy,
            DurationSeconds: call.durationSeconds,
          }),
        );
        creds = out.Credentials;
      } catch (error) {
        throw awsError(error, `STS AssumeRole into ${call.roleArn}`);
      }
      if (!creds?.AccessKeyId || !creds.SecretAccessKey) {
        throw new ExecutionError(502, 'aws_error', 'STS returned no credentials');
      }
      const endpoint = endpointFor(call.service);
      const client = new op.client({
        region: call.region,
        credentials: {
          accessKeyId: creds.AccessKeyId,
          secretAccessKey: creds.SecretAccessKey,
          sessionToken: creds.SessionToken,
          ...(creds.Expiration ? { expiration: creds.Expiration } : {}),
        },
        ...(endpoint ? { endpoint } : {}),
        // A read may be sent again after a throttle, a 5xx or a dropped connection; anything else is
        // sent once (AwsCall.retry): a write whose answer was lost may have run.
        maxAttempts: call.retry ? 2 : 1,
        // Path-style keeps S3 on the configured endpoint (the local twin has no bucket subdomains).
        ...(endpoint && call.service === 's3' ? { forcePathStyle: true } : {}),
      });
      try {
        let output;
        try {
          output = await client.send(new op.command(op.input));
        } catch (error) {
          if (call.retry || !refusedForRate(error)) throw error;
          // The service answered that it refused the call for its rate: it did not run, so a write
          // may be sent once more, after a pause.
          await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 100)));
          output = await client.send(new op.command(op.input));
        }
        return await plainOutput(output, call.maxBodyBytes);
      } catch (error) {
        throw awsError(error, `${call.service}:${call.action}`);
      } finally {
        client.destroy();
      }
    },
  };
}

/**
 * Checks a JSON value against the operation's input model and converts what JSON cannot carry:
 * timestamps (ISO strings or epoch seconds) become Dates, blobs given as text or JSON become bytes.
 * The SDK's serializers do not check types (a wrong one is silently dropped or sent), so this is
 * where "input that does not serialise" is refused, naming the path.
 */
export function conform(shape: NormalizedSchema, value: unknown, path: string, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new BadRequestError(`${path}: nested too deeply`);
  const fail = (expected: string): never => {
    throw new BadRequestError(`${path}: expected ${expected}, got ${describe(value)}`);
  };
  if (value === null) fail('a value (null is not allowed)');
  if (shape.isDocumentSchema()) return value;
  if (shape.isStructSchema()) {
    if (!isPlainObject(value)) fail(`an object (${shape.getName()})`);
    const obj = value as Record<string, unknown>;
    const members = new Map(shape.structIterator());
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(obj)) {
      const member = members.get(key);
      if (!member) {
        const known = [...members.keys()].join(', ');
        throw new BadRequestError(`${path}.${key} is not a member of ${shape.getName()} (members: ${known})`);
      }
      if (v === undefined) continue;
      out[key] = conform(member, v, `${path}.${key}`, depth + 1);
    }
    if (shape.isUnionSchema() && Object.keys(out).length !== 1) {
      fail(`exactly one of ${[...members.keys()].join(', ')} (${shape.getName()})`);
    }
    return out;
  }
  if (shape.isListSchema()) {
    if (!Array.isArray(value)) fail('an array');
    const member = shape.getValueSchema();
    return (value as unknown[]).map((v, i) => conform(member, v, `${path}[${i}]`, depth + 1));
  }
  if (shape.isMapSchema()) {
    if (!isPlainObject(value)) fail('an object (map)');
    const member = shape.getValueSchema();
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = conform(member, v, `${path}.${k}`, depth + 1);
    }
    return out;
  }
  if (shape.isBlobSchema()) {
    if (shape.isStreaming() && typeof value === 'string') return value;
    return new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
  }
  if (shape.isTimestampSchema()) {
    const date =
      typeof value === 'number'
        ? new Date(value * 1000)
        : typeof value === 'string'
          ? new Date(value)
          : undefined;
    if (!date || Number.isNaN(date.getTime())) fail('a timestamp (ISO 8601 text or epoch seconds)');
    return date;
  }
  if (shape.isBooleanSchema()) return typeof value === 'boolean' ? value : fail('a boolean');
  if (shape.isBigIntegerSchema() || shape.isBigDecimalSchema()) {
    return typeof value === 'number' || typeof value === 'string' ? value : fail('a number');
  }
  if (shape.isNumericSchema()) {
    return typeof value === 'number' && Number.isFinite(value) ? value : fail('a number');
  }
  if (shape.isStringSchema()) return typeof value === 'string' ? value : fail('a string');
  return fail('nothing (this member cannot be set)');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** The output as plain JSON: no $metadata, bytes and streams as text (bounded), dates as ISO text. */
async function plainOutput(output: Record<string, unknown>, maxBytes: number): Promise<AwsCallResult> {
  let truncated = false;
  const convert = async (v: unknown, depth: number): Promise<unknown> => {
    if (depth > MAX_DEPTH) return '[nested too deeply]';
    if (v instanceof Date) return v.toISOString();
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return bytesValue(v);
    if (isStream(v)) {
      const { bytes, cut } = await readBounded(v, maxBytes);
      truncated ||= cut;
      return bytesValue(bytes);
    }
    if (Array.isArray(v)) return Promise.all(v.map((x) => convert(x, depth + 1)));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === '$metadata' || x === undefined) continue;
        out[k] = await convert(x, depth + 1);
      }
      return out;
    }
    return v;
  };
  const plain = await convert(output, 0);
  return { output: plain, truncated };
}

function isStream(v: unknown): v is AsyncIterable<Uint8Array> & { destroy?: () => void } {
  return (
    typeof v === 'object' &&
    v !== null &&
    Symbol.asyncIterator in v &&
    typeof (v as { pipe?: unknown }).pipe === 'function'
  );
}

async function readBounded(
  stream: AsyncIterable<Uint8Array> & { destroy?: () => void },
  max: number,
): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let cut = false;
  for await (const chunk of stream) {
    const buf = Buffer.from(chunk);
    if (size + buf.length > max) {
      chunks.push(buf.subarray(0, max - size));
      size = max;
      cut = true;
      break;
    }
    chunks.push(buf);
    size += buf.length;
  }
  if (cut) stream.destroy?.();
  return { bytes: Buffer.concat(chunks), cut };
}

/** Text when the bytes are UTF-8 (parsed when that text is JSON, as Lambda payloads are), else base64. */
function bytesValue(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { base64: Buffer.from(bytes).toString('base64') };
  }
  if (/^\s*[[{"]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // text that only looks like JSON
    }
  }
  return text;
}

const NOT_FOUND = /NotFound|NoSuch/;
const THROTTLED = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'RequestThrottled',
  'SlowDown',
  'LimitExceededException',
]);
const DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthorizationError',
  'Forbidden',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
]);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE']);

/** The service answered (it has an HTTP status) that it refused the call for its rate: it did not run. */
function refusedForRate(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  return status !== undefined && (THROTTLED.has(e.name ?? '') || status === 429);
}

/** AWS answered with an error; `details.awsCode` is AWS's own code. */
export class AwsCallError extends WardenError {
  constructor(statusCode: number, code: string, message: string, awsCode: string, cause?: unknown) {
    super(statusCode, code, message, { cause, details: { awsCode } });
  }
}

/** AWS's error, with its code and message, as a Warden error of the matching class. */
export function awsError(error: unknown, what: string): WardenError {
  if (error instanceof WardenError) return error;
  const e = error as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const code = e.name && e.name !== 'Error' ? e.name : (e.code ?? 'UnknownError');
  const message = `${what} failed: ${code}: ${String(e.message ?? '').slice(0, 500)}`;
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined) {
    if (
      NETWORK.has(e.code ?? '') ||
      code === 'TimeoutError' ||
      /ECONN|socket|timed? ?out/i.test(e.message ?? '')
    ) {
      return new ExecutionError(503, 'aws_unreachable', `${what} failed: AWS could not be reached`, error);
    }
    // Raised by the SDK before sending: the input did not make a request.
    return new BadRequestError(message, { awsCode: code }, error);
  }
  const withCode = (s: number, c: string) => new AwsCallError(s, c, message, code, error);
  if (DENIED.has(code) || status === 403) return withCode(403, 'aws_access_denied');
  if (NOT_FOUND.test(code) || code === 'ResourceNotFoundException' || status === 404) {
    return withCode(404, 'aws_not_found');
  }
  if (THROTTLED.has(code) || status === 429) return withCode(429, 'aws_throttled');
  if (code === 'ConditionalCheckFailedException' || status === 409) return withCode(409, 'aws_conflict');
  if (code === 'ServiceUnavailable' || code === 'ServiceUnavailableException' || status === 503) {
    return withCode(503, 'aws_unavailable');
  }
  if (status >= 400 && status < 500) return withCode(400, 'aws_invalid_request');
  return withCode(502, 'aws_error');
}
