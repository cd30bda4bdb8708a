/**
 * Characters a person cannot see but a parser or a renderer acts on: bidirectional controls that
 * reorder what is displayed (an approver could be shown `… WHERE id = 1` while the bytes say
 * otherwise), zero-width and other format characters, tag characters (invisible ASCII), variation
 * selectors, fillers that render blank, and control characters a terminal interprets.
 *
 * What approvers are shown replaces each with a visible marker (`⟨U+202E⟩`) and a warning names
 * them; what runs, what is stored and what the approval covers stay the exact bytes.
 */

const NAMES: Readonly<Record<number, string>> = {
  0x00ad: 'SOFT HYPHEN',
  0x061c: 'ARABIC LETTER MARK',
  0x180e: 'MONGOLIAN VOWEL SEPARATOR',
  0x200b: 'ZERO WIDTH SPACE',
  0x200c: 'ZERO WIDTH NON-JOINER',
  0x200d: 'ZERO WIDTH JOINER',
  0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK',
  0x2028: 'LINE SEPARATOR',
  0x2029: 'PARAGRAPH SEPARATOR',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING',
  0x202b: 'RIGHT-TO-LEFT EMBEDDING',
  0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE',
  0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0x2060: 'WORD JOINER',
  0x2061: 'FUNCTION APPLICATION',
  0x2062: 'INVISIBLE TIMES',
  0x2063: 'INVISIBLE SEPARATOR',
  0x2064: 'INVISIBLE PLUS',
  0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE',
  0x2068: 'FIRST STRONG ISOLATE',
  0x2069: 'POP DIRECTIONAL ISOLATE',
  0x3164: 'HANGUL FILLER',
  0xfeff: 'ZERO WIDTH NO-BREAK SPACE (BOM)',
  0xffa0: 'HALFWIDTH HANGUL FILLER',
};

/**
 * Format characters (Cf: bidi controls, zero-width characters, tags, …), controls other than tab
 * and newline (ESC starts terminal escape sequences; CR rewrites a line), the line/paragraph
 * separators, variation selectors, and the Hangul fillers and braille blank that render as nothing.
 */
/* eslint-disable no-control-regex, no-misleading-character-class -- control characters and lone
   variation selectors are exactly what must be found */
const INVISIBLE =
  /[\p{Cf}\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u115f\u1160\u3164\uffa0\u2800\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;
/* eslint-enable no-control-regex, no-misleading-character-class */

export interface InvisibleCharacter {
  /** `U+202E` */
  readonly codePoint: string;
  readonly name: string;
  readonly count: number;
}

export interface Revealed {
  /** The text with every invisible character replaced by `⟨U+XXXX⟩`. */
  readonly text: string;
  /** What was found, in order of first appearance; empty when the text was clean. */
  readonly found: readonly InvisibleCharacter[];
}

function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function nameOf(cp: number): string {
  const known = NAMES[cp];
  if (known) return known;
  if (cp >= 0xe0000 && cp <= 0xe007f) return 'TAG CHARACTER';
  if ((cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0xe0100 && cp <= 0xe01ef)) return 'VARIATION SELECTOR';
  if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f)) return 'CONTROL CHARACTER';
  return 'INVISIBLE FORMAT CHARACTER';
}

/** The text as an approver should see it, and what was hidden in it. */
export function revealInvisible(text: string): Revealed {
  const counts = new Map<number, number>();
  const shown = text.replace(INVISIBLE, (ch) => {
    const cp = ch.codePointAt(0) ?? 0;
    counts.set(cp, (counts.get(cp) ?? 0) + 1);
    return `⟨${codePointLabel(cp)}⟩`;
  });
  const found = [...counts].map(([cp, count]) => ({
    codePoint: codePointLabel(cp),
    name: nameOf(cp),
    count,
  }));
  return { text: shown, found };
}

/**
 * JSON for a terminal: the same value, with every invisible character written as a `\uXXXX`
 * escape, so a bidi override or an ESC in a statement shows instead of acting on the display.
 */
export function jsonShowingInvisible(value: unknown, indent = 2): string {
  return (JSON.stringify(value, null, indent) ?? 'undefined').replace(INVISIBLE, (ch) => {
    let escaped = '';
    for (let i = 0; i < ch.length; i++) escaped += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return escaped;
  });
}

/** One sentence for approvers, or undefined when nothing was hidden. */
export function invisibleWarning(what: string, found: readonly InvisibleCharacter[]): string | undefined {
  if (found.length === 0) return undefined;
  const total = found.reduce((n, f) => n + f.count, 0);
  const list = found.map((f) => `${f.codePoint} ${f.name}${f.count > 1 ? ` ×${f.count}` : ''}`).join(', ');
  return (
    `Warning: the ${what} contains ${total} invisible character${total === 1 ? '' : 's'} (${list}), ` +
    'shown as ⟨U+…⟩. They can make text display differently from what it is; what runs is the exact text.'
  );
}
