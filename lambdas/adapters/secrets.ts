/**
 * Reading a secret's string value from Secrets Manager, once, at cold start. One client per process,
 * created on first use (most functions never read a secret after start-up).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

let shared: SecretsManagerClient | undefined;

export async function readSecretString(arn: string, client?: SecretsManagerClient): Promise<string> {
  const secrets = client ?? (shared ??= new SecretsManagerClient({ maxAttempts: 3 }));
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new Error(`secret ${arn} has no string value`);
  return out.SecretString;
}
