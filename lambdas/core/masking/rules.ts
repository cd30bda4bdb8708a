/**
 * Column rules: case-insensitive globs over `schema.table.column`, compiled once per masker.
 */
import type { ColumnRef, ColumnRule } from './types.js';

type SegmentMatcher = { readonly wildcard: boolean; test(segment: string): boolean };

export interface CompiledRule {
  readonly rule: ColumnRule;
  matches(column: ColumnRef): boolean;
}

function compileSegment(pattern: string): SegmentMatcher {
  if (/^\*+$/.test(pattern)) return { wildcard: true, test: () => true };
  if (!pattern.includes('*') && !pattern.includes('?')) {
    return { wildcard: false, test: (s) => s === pattern };
  }
  const source = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  const re = new RegExp(`^${source}$`, 's');
  return { wildcard: false, test: (s) => re.test(s) };
}

export function compileRule(rule: ColumnRule): CompiledRule {
  const segments = rule.column.toLowerCase().split('.').map(compileSegment);
  return {
    rule,
    matches(column: ColumnRef): boolean {
      if (segments.length > 3) return false;
      const table = column.table?.toLowerCase();
      // Unqualified relations live in `public` (the SQL classifier names them so too).
      const schema = column.schema?.toLowerCase() ?? (table === undefined ? undefined : 'public');
      const name = [schema, table, column.name.toLowerCase()];
      for (let i = 1; i <= segments.length; i++) {
        const seg = segments[segments.length - i];
        const actual = name[name.length - i];
        if (actual === undefined ? !seg.wildcard : !seg.test(actual)) return false;
      }
      return true;
    },
  };
}

export function findRule(rules: readonly CompiledRule[], column: ColumnRef): ColumnRule | undefined {
  for (const r of rules) if (r.matches(column)) return r.rule;
  return undefined;
}
