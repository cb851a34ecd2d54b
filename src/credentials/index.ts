import { rmSync } from 'node:fs';
import fp from 'fastify-plugin';
import type { Config } from '../config/index.ts';
import type { SecurityMaterial } from '../runtime/context.ts';
import { DecryptionError, MasterKeyError, keyIdOf, loadMasterKey, type MasterKey } from '../security/crypto.ts';
import type { Store } from '../store/types.ts';
import { Authorization } from './authorization.ts';
import { AuthorizationCodeClients } from './oauth-client.ts';
import { credentialAdminRoutes, credentialCallbackRoutes } from './routes.ts';
import { TokenService } from './token-service.ts';
import { CredentialVault } from './vault.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Access tokens and passwords of credentials, for scripts (secure store) and the http step. */
    securityMaterial: SecurityMaterial;
    /** The same object with its maintenance side: runKeepAlive(), forget(). */
    tokenService: TokenService;
  }
}

/**
 * A wrong master key must stop the start, not produce garbage tokens: every stored credential
 * must carry this key's id and decrypt (AES-GCM authenticates, so a wrong key cannot pass).
 */
export async function verifyMasterKey(store: Store, key: MasterKey, config: Pick<Config, 'dataDir'>): Promise<void> {
  const records = await store.credentials.list();
  const where = store.kind === 'sqlite' ? `the data in ${config.dataDir}` : 'the data in the database';
  const foreign = records.find((r) => keyIdOf(r.secrets) !== key.keyId);
  const vault = new CredentialVault(store.credentials, key);
  let failure: string | undefined;
  if (foreign) {
    failure = `(stored credential "${foreign.name}" is under key id ${keyIdOf(foreign.secrets) ?? 'unknown'}, this key has id ${key.keyId})`;
  } else {
    for (const record of records) {
      try {
        vault.decode(record);
      } catch (err) {
        if (!(err instanceof DecryptionError) && !(err as { code?: string }).code?.startsWith('CREDENTIAL_')) throw err;
        failure = `(stored credential "${record.name}" does not decrypt although its key id matches: the data was altered)`;
        break;
      }
    }
  }
  if (!failure) return;
  let message: string;
  if (key.source.kind === 'env') {
    message = `IFLOW_MASTER_KEY does not match the key ${where} was encrypted with ${failure}. Start iflow with the original IFLOW_MASTER_KEY; the secrets cannot be read without it.`;
  } else if (key.source.generated) {
    // Don't leave a key behind that was never the data's.
    if (key.source.file) rmSync(key.source.file, { force: true });
    message = `No master key was found (IFLOW_MASTER_KEY is unset and ${key.source.file} did not exist), but ${where} was encrypted with a key ${failure}. Set IFLOW_MASTER_KEY to the original key, or restore the key file.`;
  } else {
    message = `The master key in ${key.source.file} does not match the key ${where} was encrypted with ${failure}. Restore the original key file, or set IFLOW_MASTER_KEY to the original key.`;
  }
  throw new MasterKeyError(message);
}

/**
 * Security material: the credentials API (/api/v1/credentials), the browser authorization
 * (authorize + OAuthTokenFromCode callback), the token service (`app.securityMaterial`) and the
 * background keep-alive of refresh tokens.
 */
export const credentialsPlugin = fp(
  async (app) => {
    const { config, store } = app;
    const key = loadMasterKey(config);
    await verifyMasterKey(store, key, config);
    if (key.source.generated) app.log.info({ file: key.source.file }, 'master key generated (keep it: the stored secrets cannot be read without it)');

    const log = app.log.child({ component: 'credentials' });
    const vault = new CredentialVault(store.credentials, key);
    const clients = new AuthorizationCodeClients();
    const tokens = new TokenService({ vault, log, keepAliveMs: config.tokenKeepAliveMs });
    const authorization = new Authorization({ vault, states: store.credentials, key, clients, tokens, config, log });
    app.decorate('securityMaterial', tokens);
    app.decorate('tokenService', tokens);
    // Another instance sharing the store (PostgreSQL) refreshed, re-authorized, changed or deleted a credential: use
    // what is stored now, not a cached token (its loss of the connection is logged by the security plugin's watcher).
    const stopWatching = store.credentials.watch({ changed: (name) => tokens.changedInStore(name) });
    app.addHook('onClose', async () => stopWatching());

    await app.register(credentialAdminRoutes, { vault, clients, tokens, authorization });
    await app.register(credentialCallbackRoutes, { authorization });

    app.addHook('onReady', async () => tokens.startKeepAlive());
    // Runs before the store's onClose (hooks close in reverse order): the keep-alive run and the
    // refreshes in progress end (waits between retries are cut short, a token request already sent
    // completes) and write what they got while the store is still open.
    app.addHook('onClose', async () => {
      await tokens.stop();
      await clients.close();
    });
  },
  { name: 'iflow-credentials', dependencies: ['iflow-security'] },
);
