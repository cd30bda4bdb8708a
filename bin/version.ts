/** The CLI's version, from package.json (inlined when the CLI is compiled). */
import pkg from '../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;
