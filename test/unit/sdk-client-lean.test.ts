/**
 * The request path's SDK clients keep one signer per auth scheme (withMemoizedSigner) and send the
 * transactions' marshalled items as JSON text (withPlainJsonBodies). What goes out must be what the
 * SDK itself would send: signatures a fresh signer reproduces, with rotated credentials honoured;
 * bodies that say the same as the SDK's serializer, idempotency token included; anything the fast
 * path cannot write the protocol's way (binary) goes through the SDK's serializer.
 */
import { createHash, createHmac } from 'node:crypto';
import {
  DynamoDBClient,
  PutItemCommand,
  TransactWriteItemsCommand,
  type TransactWriteItemsCommandInput,
} from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import {
  requestPathClient,
  withMemoizedSigner,
  withoutNoOpLogging,
  withPlainJsonBodies,
} from '../../lambdas/adapters/sdk-client.js';

interface Captured {
  method: string;
  hostname: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? new Uint8Array(d)
      : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** node:crypto as the signer's hash (what @smithy/hash-node does). */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

function capture(into: Captured[]) {
  return {
    handle: async (request: {
      method: string;
      hostname: string;
      path: string;
      headers: Record<string, string>;
      body?: unknown;
    }) => {
      const body = request.body;
      into.push({
        method: request.method,
        hostname: request.hostname,
        path: request.path,
        headers: { ...request.headers },
        body:
          typeof body === 'string'
            ? body
            : body instanceof Uint8Array
              ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
              : String(body),
      });
      return {
        response: {
          statusCode: 200,
          headers: { 'content-type': 'application/x-amz-json-1.0' },
          body: Buffer.from('{}'),
        },
      };
    },
  };
}

const common = { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', maxAttempts: 1 };
const keys = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

function client(sent: Captured[], extra: object = {}): DynamoDBClient {
  return new DynamoDBClient({ ...common, credentials: keys, requestHandler: capture(sent), ...extra });
}

/** Signs the captured request again with a fresh signer at its own date: the signature it must carry. */
async function expectedSignature(
  c: Captured,
  credentials: { accessKeyId: string; secretAccessKey: string },
): Promise<string> {
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(c.headers.authorization ?? '')![1]!.split(';');
  const headers: Record<string, string> = {};
  for (const h of signedHeaders) headers[h] = c.headers[h]!;
  const date = c.headers['x-amz-date']!;
  const signingDate = new Date(
    `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
  );
  const fresh = new SignatureV4({
    credentials,
    region: 'us-east-1',
    service: 'dynamodb',
    sha256: Sha256,
    uriEscapePath: true,
  });
  const signed = await fresh.sign(
    {
      method: c.method,
      protocol: 'http:',
      hostname: c.hostname,
      path: c.path,
      headers: Object.fromEntries(
        Object.entries(headers).filter(([k]) => k !== 'x-amz-date' && k !== 'authorization'),
      ),
      body: c.body,
      query: {},
    } as never,
    { signingDate },
  );
  return /Signature=([0-9a-f]+)/.exec(
    (signed as unknown as { headers: Record<string, string> }).headers.authorization!,
  )![1]!;
}

const signatureOf = (c: Captured) => /Signature=([0-9a-f]+)/.exec(c.headers.authorization ?? '')?.[1];

describe('withMemoizedSigner', () => {
  it('builds the SDK signer once per auth scheme and every signature is what a fresh signer makes', async () => {
    const sent: Captured[] = [];
    const c = client(sent);
    const config = c.config as unknown as { signer: (s?: unknown) => Promise<unknown> };
    const sdk = config.signer;
    let built = 0;
    config.signer = (scheme?: unknown) => {
      built++;
      return sdk(scheme);
    };
    withMemoizedSigner(c);
    for (let i = 0; i < 5; i++) {
      await c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: `item-${i}` } } }));
    }
    expect(built).toBe(1);
    expect(sent).toHaveLength(5);
    for (const request of sent) {
      expect(request.headers.authorization).toContain('Credential=AKIDEXAMPLE/');
      expect(signatureOf(request)).toBe(await expectedSignature(request, keys));
    }
  });

  it('signs with rotated credentials as soon as the provider hands them out (no stale key kept)', async () => {
    const sent: Captured[] = [];
    // Inside the SDK's refresh window (five minutes), so its memoized provider asks on every call.
    const soon = () => new Date(Date.now() + 1_000);
    let current: typeof keys & { expiration: Date } = { ...keys, expiration: soon() };
    const c = requestPathClient(client(sent, { credentials: async () => current }));
    await c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: 'a' } } }));
    const rotated = { accessKeyId: 'AKIDROTATED', secretAccessKey: 'rotated-secret' };
    current = { ...rotated, expiration: soon() };
    await c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: 'b' } } }));
    const [first, second] = sent;
    expect(signatureOf(first!)).toBe(await expectedSignature(first!, keys));
    expect(second!.headers.authorization).toContain('Credential=AKIDROTATED/');
    expect(signatureOf(second!)).toBe(await expectedSignature(second!, rotated));
    expect(signatureOf(second!)).not.toBe(await expectedSignature(second!, keys));
  });

  it('builds the signer again after building it failed', async () => {
    const sent: Captured[] = [];
    const c = client(sent);
    const config = c.config as unknown as { signer: (s?: unknown) => Promise<unknown> };
    const sdk = config.signer;
    let calls = 0;
    config.signer = (scheme?: unknown) =>
      ++calls === 1 ? Promise.reject(new Error('no region yet')) : sdk(scheme);
    withMemoizedSigner(c);
    await expect(c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: 'a' } } }))).rejects.toThrow(
      'no region yet',
    );
    await c.send(new PutItemCommand({ TableName: 't', Item: { id: { S: 'b' } } }));
    expect(calls).toBe(2);
    expect(signatureOf(sent[0]!)).toBe(await expectedSignature(sent[0]!, keys));
  });
});

const TRANSACTIONS = { TransactWriteItemsCommand: ['TransactItems'] } as const;

/** Strings a JSON writer can get wrong: quotes, escapes, controls, line separators, astral, lone surrogates. */
const AWKWARD = [
  'plain',
  'quote " backslash \\ slash /',
  'controls \u0000\u0001\u001f\t\n\r\b\f',
  'separators \u2028\u2029 and del \u007f',
  'emoji 🙂 and accents éü 日本',
  'lone high \ud800 and low \udc00',
  '</script><!--',
];

function transaction(token?: string): TransactWriteItemsCommandInput {
  return {
    ...(token ? { ClientRequestToken: token } : {}),
    TransactItems: [
      {
        Put: {
          TableName: 'requests',
          Item: {
            id: { S: 'r_1' },
            n: { N: '-12.5e3' },
            yes: { BOOL: true },
            none: { NULL: true },
            tags: { SS: AWKWARD.slice(0, 3) },
            nums: { NS: ['1', '2'] },
            nested: {
              M: {
                list: { L: AWKWARD.map((S) => ({ S })) },
                deeper: { M: { x: { L: [{ M: { y: { S: AWKWARD[3]! } } }] } } },
              },
            },
          },
          ConditionExpression: 'attribute_not_exists(#id)',
          ExpressionAttributeNames: { '#id': 'id' },
        },
      },
      {
        Put: {
          TableName: 'trail',
          Item: { sessionId: { S: AWKWARD[4]! }, seq: { N: '1' } },
          ConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': 'lastSeq' },
          ExpressionAttributeValues: { ':s': { N: '0' } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      { Delete: { TableName: 'grants', Key: { id: { S: 'g' } } } },
      {
        ConditionCheck: {
          TableName: 'grants',
          Key: { id: { S: 'h' } },
          ConditionExpression: 'attribute_exists(id)',
        },
      },
    ],
  };
}

/** Headers that differ between any two sends (time, random ids) or follow from those. */
const VOLATILE = new Set(['amz-sdk-invocation-id', 'x-amz-date', 'authorization', 'x-amz-content-sha256']);
const stable = (h: Record<string, string>) =>
  Object.fromEntries(Object.entries(h).filter(([k]) => !VOLATILE.has(k)));

async function both(input: () => TransactWriteItemsCommandInput): Promise<[Captured, Captured]> {
  const stock: Captured[] = [];
  const lean: Captured[] = [];
  await withoutNoOpLogging(client(stock)).send(new TransactWriteItemsCommand(input()));
  await withPlainJsonBodies(requestPathClient(client(lean, { cacheMiddleware: true })), TRANSACTIONS).send(
    new TransactWriteItemsCommand(input()),
  );
  return [stock[0]!, lean[0]!];
}

describe('withPlainJsonBodies', () => {
  it('sends what the SDK sends: same request line and headers, a body with the same members', async () => {
    const [stock, lean] = await both(() => transaction('token-1'));
    expect({ ...lean, headers: stable(lean.headers), body: JSON.parse(lean.body) }).toEqual({
      ...stock,
      headers: stable(stock.headers),
      body: JSON.parse(stock.body),
    });
    expect(JSON.parse(lean.body).ClientRequestToken).toBe('token-1');
    // The signature covers the body actually sent.
    expect(signatureOf(lean)).toBe(await expectedSignature(lean, keys));
    expect(lean.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(lean.body).digest('hex'));
    expect(Number(lean.headers['content-length'])).toBe(Buffer.byteLength(lean.body));
  });

  it('fills in the idempotency token as the SDK does when the input has none', async () => {
    const [stock, lean] = await both(() => transaction());
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const { ClientRequestToken: a, ...stockRest } = JSON.parse(stock.body);
    const { ClientRequestToken: b, ...leanRest } = JSON.parse(lean.body);
    expect(a).toMatch(uuid);
    expect(b).toMatch(uuid);
    expect(leanRest).toEqual(stockRest);
  });

  it('uses the SDK serializer for binary attributes (base64, as the protocol writes bytes)', async () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const input = (): TransactWriteItemsCommandInput => ({
      ClientRequestToken: 't',
      TransactItems: [
        { Put: { TableName: 'x', Item: { id: { S: 'a' }, blob: { B: bytes }, set: { BS: [bytes] } } } },
      ],
    });
    const [stock, lean] = await both(input);
    expect(lean.body).toBe(stock.body);
    expect(JSON.parse(lean.body).TransactItems[0].Put.Item.blob.B).toBe(
      Buffer.from(bytes).toString('base64'),
    );
  });

  it('leaves other commands to the SDK serializer, byte for byte', async () => {
    const stock: Captured[] = [];
    const lean: Captured[] = [];
    const put = () => new PutItemCommand({ TableName: 't', Item: { id: { S: AWKWARD[2]! }, n: { N: '1' } } });
    await withoutNoOpLogging(client(stock)).send(put());
    await withPlainJsonBodies(requestPathClient(client(lean)), TRANSACTIONS).send(put());
    expect(lean[0]!.body).toBe(stock[0]!.body);
    expect(stable(lean[0]!.headers)).toEqual(stable(stock[0]!.headers));
  });

  it('does not send members the input does not have, nor keep a previous call’s items', async () => {
    const sent: Captured[] = [];
    const c = withPlainJsonBodies(requestPathClient(client(sent, { cacheMiddleware: true })), TRANSACTIONS);
    await c.send(new TransactWriteItemsCommand(transaction('a')));
    await c.send(
      new TransactWriteItemsCommand({
        ClientRequestToken: 'b',
        TransactItems: [{ Delete: { TableName: 't', Key: { id: { S: 'only' } } } }],
      }),
    );
    const second = JSON.parse(sent[1]!.body);
    expect(second).toEqual({
      ClientRequestToken: 'b',
      TransactItems: [{ Delete: { TableName: 't', Key: { id: { S: 'only' } } } }],
    });
  });

  it('is in use with the SDK installed here (a renamed serializer or another body type would turn it off silently)', async () => {
    const bodies: unknown[] = [];
    const c = withPlainJsonBodies(
      requestPathClient(
        new DynamoDBClient({
          ...common,
          credentials: keys,
          cacheMiddleware: true,
          requestHandler: {
            handle: async (request: { body?: unknown }) => {
              bodies.push(request.body);
              return {
                response: {
                  statusCode: 200,
                  headers: { 'content-type': 'application/x-amz-json-1.0' },
                  body: Buffer.from('{}'),
                },
              };
            },
          },
        }),
      ),
      TRANSACTIONS,
    );
    await c.send(new TransactWriteItemsCommand(transaction('t')));
    // The SDK's serializer writes its own byte adapter; the fast path hands over a Buffer.
    expect(Buffer.isBuffer(bodies[0])).toBe(true);
    expect(c.middlewareStack.identify().filter((m) => m.startsWith('serializerMiddleware'))).toHaveLength(1);
  });

  it('leaves a client without the SDK serializer alone', () => {
    const c = client([]);
    c.middlewareStack.remove('serializerMiddleware');
    const before = c.middlewareStack.identify();
    withPlainJsonBodies(c, TRANSACTIONS);
    expect(c.middlewareStack.identify()).toEqual(before);
  });
});
