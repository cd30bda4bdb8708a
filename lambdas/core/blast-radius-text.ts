/** The blast radius in words, for the approval page, notifications and the CLI (no parser loaded). */
import type { BlastRadius } from './blast-radius.js';

/** One line for people: `~1 row of public.orders (of ~300)`, `WHOLE TABLE: ~300 rows …`. */
export function blastRadiusText(b: BlastRadius): string {
  if (b.kind === 'aws') return `${b.action} on ${b.resources.join(', ') || '(no resource named)'}`;
  const parts = b.statements.map((s) => {
    const table = s.table ?? 'an unnamed table';
    const rows =
      s.estimatedRows === undefined
        ? `unknown number of rows (${s.note ?? 'no estimate'})`
        : `~${s.estimatedRows} row${s.estimatedRows === 1 ? '' : 's'}`;
    const of = s.tableRows !== undefined && s.type !== 'TRUNCATE' ? ` (of ~${s.tableRows})` : '';
    const whole = s.wholeTable
      ? `WHOLE TABLE${s.noWhere ? ', no WHERE' : ''}: `
      : s.nearlyWholeTable
        ? 'NEARLY WHOLE TABLE: '
        : '';
    return `${whole}${s.type} ${rows} of ${table}${of}`;
  });
  // highReason is absent on records stored before it existed: derive the reason as they did.
  const reason =
    b.highReason ??
    (b.wholeTable
      ? 'whole table'
      : b.estimatedRows === undefined
        ? 'reach unknown'
        : `more than ${b.threshold} rows`);
  const high = b.high ? ` · high risk: ${reason}` : '';
  return `${parts.join('; ') || 'no row changes'}${high} (PostgreSQL estimate, EXPLAIN without ANALYZE)`;
}
