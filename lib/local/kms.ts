/**
 * The local twin's KMS: the AWS JSON 1.1 protocol (`X-Amz-Target: TrentService.<Operation>`) for
 * the operations Warden's functions and CLI send, on keys whose material the twin keeps:
 *
 * - HMAC_256 keys: GenerateMac and VerifyMac (HMAC_SHA_256), a wrong MAC answered
 *   `KMSInvalidMacException` as KMS does;
 * - symmetric keys: GenerateDataKey (AES_256) and Decrypt, the encryption context bound to the
 *   ciphertext (a different context is `InvalidCiphertextException`).
 *
 * Who may do what is per key and per access key id, as a key policy and IAM grants would say on
 * AWS: the twin's functions sign with `local-twin`, which may only VerifyMac on the policy key,
 * while `warden policy push` (and the twin's own push of its demo set) signs as the operator. An
 * operation a caller was not granted is `AccessDeniedException`. The request's SigV4 signature is
 * not checked: the access key id in its Authorization header names the caller.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback } from './listen.js';

export type KmsOperation = 'GenerateMac' | 'VerifyMac' | 'GenerateDataKey' | 'Decrypt';

export interface LocalKmsKey {
  /** The key's id (a UUID, as KMS names keys); its ARN is built from the account and region. */
  readonly id: string;
  readonly spec: 'HMAC_256' | 'SYMMETRIC_DEFAULT';
  /** 32 bytes of key material, kept by the caller so a restart keeps MACs and ciphertexts valid. */
  readonly material: Buffer;
  /** Access key id → the operations it may send with this key. */
  readonly grants: Readonly<Record<string, readonly KmsOperation[]>>;
}

export interface LocalKms {
  readonly url: string;
  /** The ARN of the key with this id. */
  arnOf(id: string): string;
  close(): Promise<void>;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const MAX_MAC_MESSAGE = 4096;

/** The encryption context as the ciphertext binds it: keys in order, so any order means the same. */
function contextAad(context: unknown): Buffer {
  if (context === undefined || context === null) return Buffer.from('{}');
  if (typeof context !== 'object' || Array.isArray(context)) {
    throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings');
  }
  const entries = Object.entries(context as Record<string, unknown>);
  for (const [, v] of entries) {
    if (typeof v !== 'string')
      throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings');
  }
  return Buffer.from(JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

function blob(value: unknown, name: string): Buffer {
  if (typeof value !== 'string' || value.length === 0) {
    throw new KmsError('ValidationException', `${name} is required (base64)`);
  }
  return Buffer.from(value, 'base64');
}

export async function startLocalKms(options: {
  readonly host?: string;
  readonly keys: readonly LocalKmsKey[];
}): Promise<LocalKms> {
  const arnOf = (id: string) => `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`;
  const keys = new Map(options.keys.map((k) => [k.id, k]));
  for (const k of options.keys) {
    if (k.material.length !== 32) throw new RangeError(`key ${k.id}: material must be 32 bytes`);
  }

  const keyOf = (keyId: unknown, caller: string, op: KmsOperation): LocalKmsKey => {
    const text = typeof keyId === 'string' ? keyId : '';
    const id = text.startsWith('arn:') ? text.slice(text.lastIndexOf('/') + 1) : text;
    const key = keys.get(id);
    if (!key || (text.startsWith('arn:') && text !== arnOf(id))) {
      throw new KmsError('NotFoundException', `Key '${text}' does not exist`);
    }
    if (!(key.grants[caller] ?? []).includes(op)) {
      throw new KmsError(
        'AccessDeniedException',
        `User: arn:aws:iam::${ACCOUNT}:user/${caller} is not authorized to perform: kms:${op} on resource: ${arnOf(id)}`,
      );
    }
    const wants = op === 'GenerateMac' || op === 'VerifyMac' ? 'HMAC_256' : 'SYMMETRIC_DEFAULT';
    if (key.spec !== wants) {
      throw new KmsError('InvalidKeyUsageException', `${arnOf(id)} key usage is not valid for kms:${op}`);
    }
    return key;
  };

  const mac = (key: LocalKmsKey, body: Record<string, unknown>) => {
    if (body.MacAlgorithm !== 'HMAC_SHA_256') {
      throw new KmsError(
        'InvalidKeyUsageException',
        `MacAlgorithm ${String(body.MacAlgorithm)} is not valid for this key`,
      );
    }
    const message = blob(body.Message, 'Message');
    if (message.length > MAX_MAC_MESSAGE) {
      throw new KmsError('ValidationException', `Message must be at most ${MAX_MAC_MESSAGE} bytes`);
    }
    return createHmac('sha256', key.material).update(message).digest();
  };

  const operations: Record<KmsOperation, (body: Record<string, unknown>, caller: string) => unknown> = {
    GenerateMac(body, caller) {
      const key = keyOf(body.KeyId, caller, 'GenerateMac');
      return { KeyId: arnOf(key.id), Mac: mac(key, body).toString('base64'), MacAlgorithm: 'HMAC_SHA_256' };
    },
    VerifyMac(body, caller) {
      const key = keyOf(body.KeyId, caller, 'VerifyMac');
      const expected = mac(key, body);
      const given = blob(body.Mac, 'Mac');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new KmsError('KMSInvalidMacException', 'The MAC is not valid for this message and key');
      }
      return { KeyId: arnOf(key.id), MacValid: true, MacAlgorithm: 'HMAC_SHA_256' };
    },
    GenerateDataKey(body, caller) {
      const key = keyOf(body.KeyId, caller, 'GenerateDataKey');
      if (body.KeySpec !== 'AES_256' && body.NumberOfBytes !== 32) {
        throw new KmsError('ValidationException', 'KeySpec AES_256 (or NumberOfBytes 32) is required');
      }
      const plain = randomBytes(32);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key.material, iv);
      cipher.setAAD(contextAad(body.EncryptionContext));
      const data = Buffer.concat([cipher.update(plain), cipher.final()]);
      const ciphertext = Buffer.concat([Buffer.from(key.id, 'utf8'), iv, cipher.getAuthTag(), data]);
      return {
        KeyId: arnOf(key.id),
        Plaintext: plain.toString('base64'),
        CiphertextBlob: ciphertext.toString('base64'),
      };
    },
    Decrypt(body, caller) {
      const ciphertext = blob(body.CiphertextBlob, 'CiphertextBlob');
      const id = ciphertext.subarray(0, 36).toString('utf8');
      const key = keyOf(arnOf(id), caller, 'Decrypt');
      if (body.KeyId !== undefined && keyOf(body.KeyId, caller, 'Decrypt') !== key) {
        throw new KmsError(
          'IncorrectKeyException',
          'The key ID in the request does not identify the key that encrypted the ciphertext',
        );
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.material, ciphertext.subarray(36, 48));
        decipher.setAAD(contextAad(body.EncryptionContext));
        decipher.setAuthTag(ciphertext.subarray(48, 64));
        const plain = Buffer.concat([decipher.update(ciphertext.subarray(64)), decipher.final()]);
        return {
          KeyId: arnOf(key.id),
          Plaintext: plain.toString('base64'),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      } catch {
        throw new KmsError(
          'InvalidCiphertextException',
          'The ciphertext is not valid for this key and encryption context',
        );
      }
    },
  };

  const answer = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomBytes(16).toString('hex'),
    });
    res.end(text);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const target = String(req.headers['x-amz-target'] ?? '');
        const op = target.startsWith('TrentService.') ? (target.slice(13) as KmsOperation) : undefined;
        if (req.method !== 'POST' || !op || !Object.hasOwn(operations, op)) {
          throw new KmsError(
            'UnknownOperationException',
            `the twin's KMS does not answer ${target || req.method}`,
          );
        }
        const caller = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
        if (!caller) throw new KmsError('MissingAuthenticationTokenException', 'the request is not signed');
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        } catch {
          throw new KmsError('SerializationException', 'the body is not JSON');
        }
        if (!body || typeof body !== 'object' || Array.isArray(body)) {
          throw new KmsError('SerializationException', 'the body is not a JSON object');
        }
        answer(res, 200, operations[op](body as Record<string, unknown>, caller));
      } catch (error) {
        if (error instanceof KmsError) answer(res, 400, { __type: error.type, message: error.message });
        else answer(res, 500, { __type: 'KMSInternalException', message: String(error) });
      }
    });
  });
  const url = await listenLoopback(server, options.host);
  return { url, arnOf, close: () => closeServer(server) };
}
