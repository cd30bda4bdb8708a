/**
 * The Warden CLI (`npx warden --help`). Each area's commands live in their own module
 * (bin/*-cli.ts) and register themselves in bin/cli-program.ts. It finds the gateway and
 * credentials in --url/--token or WARDEN_URL/WARDEN_TOKEN, the sign-in `warden login` stored for
 * the URL, or (local twin only) a dev user's token (--as, default alice). Exit codes: docs/cli.md.
 */
import { main } from './cli-program.js';

await main(process.argv.slice(2));
