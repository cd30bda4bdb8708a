/**
 * The local twin's outbox: every approval notification the notify step sends, captured so a person
 * (or a test, or the browser e2e) can follow the review link without Slack or a mail server.
 * `POST /dev/outbox` is where the notify step's OutboxChannel delivers (WARDEN_OUTBOX_URL);
 * `GET /dev/outbox` lists what arrived, newest last. Only the local twin mounts it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from './apigw.js';

export interface OutboxMessage {
  readonly id: number;
  readonly at: string;
  readonly requestId: string;
  readonly reviewUrl: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly slack: unknown;
  readonly to: unknown;
}

export interface Outbox {
  readonly messages: readonly OutboxMessage[];
  /** Handles `/dev/outbox`; returns false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

const MAX_MESSAGES = 1000;

export function createOutbox(announce: (line: string) => void): Outbox {
  const messages: OutboxMessage[] = [];
  let seq = 0;
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  return {
    messages,
    handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://local');
      if (url.pathname !== '/dev/outbox') return false;
      if (req.method === 'GET') {
        const requestId = url.searchParams.get('requestId');
        send(res, 200, {
          messages: requestId ? messages.filter((m) => m.requestId === requestId) : messages,
        });
        return true;
      }
      if (req.method !== 'POST') {
        send(res, 405, { error: { code: 'method_not_allowed', message: 'GET or POST' } });
        return true;
      }
      void readBody(req, 1024 * 1024).then((body) => {
        if (body === 'too_large')
          return send(res, 413, { error: { code: 'payload_too_large', message: 'too large' } });
        try {
          const m = JSON.parse(body.toString('utf8')) as Omit<OutboxMessage, 'id' | 'at'>;
          if (typeof m.requestId !== 'string' || typeof m.reviewUrl !== 'string') throw new Error('shape');
          messages.push({ ...m, id: ++seq, at: new Date().toISOString() });
          if (messages.length > MAX_MESSAGES) messages.shift();
          announce(`approval requested: ${m.subject}\n    review: ${m.reviewUrl}`);
          send(res, 202, { id: seq });
        } catch {
          send(res, 400, { error: { code: 'bad_request', message: 'expected an outbox message' } });
        }
      });
      return true;
    },
  };
}
