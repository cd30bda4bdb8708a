import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { createMasker } from './engine.js';
import type { Masker, MaskCounts } from './types.js';

export interface MaskJsonLinesOptions {
  /** @default a masker with the default detectors and strategies, and a random hash key */
  readonly masker?: Masker;
}

const LONG_DIGITS_RE = /\d{16}/;

/**
 * Quotes integers of 16+ digits outside strings: JSON.parse would round them (a card number with
 * them), and as strings their digits can be checked.
 */
function quoteBigIntegers(line: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 34) {
      // Skip the string, escapes included.
      for (i++; i < line.length; i++) {
        const d = line.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if ((c >= 48 && c <= 57) || c === 45) {
      let j = c === 45 ? i + 1 : i;
      const start = j;
      while (j < line.length && line.charCodeAt(j) >= 48 && line.charCodeAt(j) <= 57) j++;
      const next = line.charCodeAt(j);
      if (j - start >= 16 && next !== 46 && next !== 101 && next !== 69) {
        out += line.slice(last, i) + '"' + line.slice(i, j) + '"';
        last = j;
      }
      i = j - 1;
    }
  }
  return last === 0 ? line : out + line.slice(last);
}

/**
 * Masks one line. A JSON line comes back as the same JSON value, masked, re-serialised compactly;
 * integers too long for a double come back as strings (masked or not). A line
 * that is not JSON is masked as plain text and comes back as text.
 */
export function maskJsonLine(masker: Masker, line: string): { line: string; byType: MaskCounts } {
  let value: unknown;
  try {
    value = JSON.parse(LONG_DIGITS_RE.test(line) ? quoteBigIntegers(line) : line);
  } catch {
    const masked = masker.maskText(line);
    return { line: masked.text, byType: masked.byType };
  }
  const masked = masker.maskValue(value);
  return { line: JSON.stringify(masked.value) ?? 'null', byType: masked.byType };
}

const FLUSH_CHARS = 64 * 1024;

/**
 * The engine behind `npx warden mask`: JSON lines in, the same lines masked out (line for line,
 * empty lines kept), counts returned for the caller to print.
 */
export async function maskJsonLines(
  input: Readable,
  output: Writable,
  options: MaskJsonLinesOptions = {},
): Promise<MaskCounts> {
  const masker = options.masker ?? createMasker({ hashKey: randomBytes(32) });
  const counts: MaskCounts = {};
  let pending = '';
  let outBuf: string[] = [];
  let outChars = 0;

  const flush = async (): Promise<void> => {
    if (outBuf.length === 0) return;
    const chunk = outBuf.join('');
    outBuf = [];
    outChars = 0;
    if (!output.write(chunk)) await once(output, 'drain');
  };
  const handle = (raw: string): void => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    let text = line;
    if (line.trim() !== '') {
      const r = maskJsonLine(masker, line);
      text = r.line;
      for (const k in r.byType) counts[k] = (counts[k] ?? 0) + r.byType[k];
    }
    outBuf.push(text, '\n');
    outChars += text.length + 1;
  };

  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    pending += chunk;
    let start = 0;
    let nl: number;
    while ((nl = pending.indexOf('\n', start)) !== -1) {
      handle(pending.slice(start, nl));
      start = nl + 1;
    }
    pending = pending.slice(start);
    if (outChars >= FLUSH_CHARS) await flush();
  }
  if (pending !== '') handle(pending);
  await flush();
  return counts;
}
