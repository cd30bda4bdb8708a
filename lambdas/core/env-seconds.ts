/** Settings in whole seconds read from the functions' environment (no dependencies: any bundle may use it). */

/**
 * A setting in whole seconds from 1 to 86400, read from the environment variable `name`: undefined
 * when unset or empty; anything else stops the cold start with the variable's name.
 */
export function wholeSecondsFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  const seconds = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(seconds >= 1 && seconds <= 86_400)) {
    throw new TypeError(
      `${name} must be a whole number of seconds from 1 to 86400, got ${JSON.stringify(value)}`,
    );
  }
  return seconds;
}
