/**
 * Nesting guard that runs BEFORE libpg-query sees the text.
 *
 * Why it exists: libpg-query's WASM build turns its parse tree into JSON recursively. A tree a
 * few thousand levels deep overflows the JS stack inside WASM (a RangeError), and the module's
 * own shadow stack is not unwound: after a few dozen such overflows every later parse, even
 * `SELECT 1`, dies with "memory access out of bounds". One hostile caller could thus break the
 * classifier for everyone on a warm Lambda. So a statement that might build a deep tree is refused
 * here, and the parser is never asked.
 *
 * The estimate is an upper bound on how many nesting levels the text can create: every level of
 * a PostgreSQL raw parse tree comes from a bracket, an operator, or one of a few keywords
 * (JOIN, UNION, NOT, IS, CASE…). AND/OR and commas build flat lists, so they end a chain.
 */
import type { ScanToken } from 'libpg-query';

/** Most nesting units a statement may have. The WASM parser overflows near 2,000 nested subqueries. */
export const MAX_NESTING = 500;

const OPERATOR_RUN = /[+\-*/<>=~!@#%^&|`?:]+/g;
const BRACKET = /[([]/g;
const NEST_WORD =
  /\b(?:join|union|intersect|except|not|is|isnull|notnull|like|ilike|similar|between|in|case|collate|at|overlaps|escape)\b/gi;

/**
 * Quick upper bound without tokenizing: counts brackets, operator runs and nesting keywords
 * anywhere, including inside strings and comments (over-counting is safe; it only sends the text
 * to the precise check).
 */
export function roughNesting(sql: string): number {
  return (
    (sql.match(BRACKET)?.length ?? 0) +
    (sql.match(OPERATOR_RUN)?.length ?? 0) +
    (sql.match(NEST_WORD)?.length ?? 0)
  );
}

const CHAIN_WORDS = new Set([
  'not', 'is', 'isnull', 'notnull', 'like', 'ilike', 'similar', 'in', 'collate', 'at', 'overlaps',
  'escape', 'between',
]); // prettier-ignore
/** Left-deep chains that commas and AND/OR do not end (`a JOIN b ON x, …` still nests). */
const STICKY_WORDS = new Set(['join', 'union', 'intersect', 'except']);
const COMMENT_TOKENS = new Set(['C_COMMENT', 'SQL_COMMENT']);

interface Frame {
  readonly kind: 'bracket' | 'case';
  /** Units of all enclosing frames, fixed when this frame opened. */
  readonly outer: number;
  chain: number;
  sticky: number;
  betweenPending: boolean;
}

/**
 * Precise upper bound over the real PostgreSQL lexer's tokens (so strings, dollar quotes,
 * comments and quoted identifiers count for nothing). Returns the deepest point reached.
 */
export function tokenNesting(tokens: readonly ScanToken[]): number {
  const stack: Frame[] = [];
  let frame: Frame = { kind: 'bracket', outer: 0, chain: 0, sticky: 0, betweenPending: false };
  let deepest = 0;
  let previous = '';
  const open = (kind: Frame['kind']): void => {
    stack.push(frame);
    frame = {
      kind,
      outer: frame.outer + frame.chain + frame.sticky + 1,
      chain: 0,
      sticky: 0,
      betweenPending: false,
    };
  };
  const close = (): void => {
    frame = stack.pop() ?? { kind: 'bracket', outer: 0, chain: 0, sticky: 0, betweenPending: false };
  };
  for (const token of tokens) {
    if (COMMENT_TOKENS.has(token.tokenName)) continue;
    const text = token.text;
    const word = token.keywordKind !== 0 ? text.toLowerCase() : '';
    if (text === '(' || text === '[') open('bracket');
    else if (word === 'case') open('case');
    else if (text === ')' || text === ']') close();
    else if (word === 'end') {
      if (frame.kind === 'case') close();
    } else if (text === ',') frame.chain = 0;
    else if (text === ';') {
      stack.length = 0;
      frame = { kind: 'bracket', outer: 0, chain: 0, sticky: 0, betweenPending: false };
    } else if (word === 'and' || word === 'or') {
      // BETWEEN x AND y: this AND belongs to the BETWEEN, which is still open.
      if (word === 'and' && frame.betweenPending) frame.betweenPending = false;
      else frame.chain = 0;
    } else if (word === 'when' || word === 'then' || word === 'else') {
      if (frame.kind === 'case') frame.chain = 0;
    } else if (STICKY_WORDS.has(word)) frame.sticky += 1;
    else if (CHAIN_WORDS.has(word)) {
      frame.chain += 1;
      if (word === 'between') frame.betweenPending = true;
    } else if (token.keywordKind === 0 && /^[+\-*/<>=~!@#%^&|`?:]+$/.test(text)) {
      // `SELECT *`, `t.*`, `count(*)`: a star, not a multiplication.
      if (!(text === '*' && /^(select|distinct|all|,|\.|\()$/i.test(previous))) frame.chain += 1;
    }
    previous = text;
    deepest = Math.max(deepest, frame.outer + frame.chain + frame.sticky);
  }
  return deepest;
}
