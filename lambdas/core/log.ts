/**
 * The one way Warden writes a log line: a JSON object, masked by the value detectors before it is
 * printed. Log lines carry error messages, causes and stacks that may quote a statement, an AWS
 * input or a value a database echoed; masking them here means no caller has to remember to.
 */
import { secondLayer } from './masking/second-layer.js';

export type LogEntry = Record<string, unknown>;
export type Log = (entry: LogEntry) => void;

/** The log line `entry` becomes: masked JSON, with the time first. */
export function maskedLogLine(entry: LogEntry, now: Date = new Date()): string {
  let value: unknown;
  try {
    // A value that is not plain JSON (an Error, a Map) is read as JSON would read it, then masked.
    value = JSON.parse(JSON.stringify({ time: now.toISOString(), ...entry }) ?? '{}');
  } catch {
    value = { time: now.toISOString(), level: 'error', msg: 'unloggable entry' };
  }
  return JSON.stringify(secondLayer(value));
}

/** Writes one masked JSON line to stdout (CloudWatch Logs in AWS). */
export const logJson: Log = (entry) => {
  console.log(maskedLogLine(entry));
};
