import type { CredentialRecord, CredentialRepository } from '../store/types.ts';
import { DecryptionError, type MasterKey } from '../security/crypto.ts';
import { CredentialError, type Credential, type CredentialSecrets, type CredentialSettings, type CredentialState, type CredentialType } from './types.ts';

/** The AAD context a credential's secrets are bound to. */
function secretsContext(name: string): string {
  return `credential:${name}`;
}

export function oauthStateContext(state: string): string {
  return `oauth-state:${state}`;
}

export type CredentialDraft = Omit<Credential, 'version'>;

/**
 * Credentials with their secrets decrypted, over the store's repository. Writes compare the
 * record's `version`; `mutate` re-reads and re-applies a change when another writer came first.
 */
export class CredentialVault {
  constructor(
    readonly repository: CredentialRepository,
    readonly key: MasterKey,
  ) {}

  decode(record: CredentialRecord): Credential {
    let secrets: CredentialSecrets;
    try {
      secrets = this.key.decryptJson<CredentialSecrets>(record.secrets, secretsContext(record.name));
    } catch (err) {
      if (!(err instanceof DecryptionError)) throw err;
      throw new CredentialError(record.name, 'CREDENTIAL_UNREADABLE', `Credential "${record.name}" cannot be decrypted with the current master key (${err.message}): an admin re-creates it`, {
        statusCode: 500,
      });
    }
    return {
      name: record.name,
      type: record.type as CredentialType,
      settings: record.settings as CredentialSettings,
      secrets,
      state: record.state as CredentialState,
      version: record.version,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
    };
  }

  encode(credential: CredentialDraft): Omit<CredentialRecord, 'version'> {
    return {
      name: credential.name,
      type: credential.type,
      settings: withoutUndefined(credential.settings),
      secrets: this.key.encryptJson(withoutUndefined(credential.secrets), secretsContext(credential.name)),
      state: withoutUndefined(credential.state),
      createdAt: credential.createdAt,
      updatedAt: credential.updatedAt,
    };
  }

  async get(name: string): Promise<Credential | undefined> {
    const record = await this.repository.get(name);
    return record && this.decode(record);
  }

  async list(): Promise<Credential[]> {
    return (await this.repository.list()).map((record) => this.decode(record));
  }

  /** false when one of that name exists already. */
  async create(credential: CredentialDraft): Promise<boolean> {
    return this.repository.create({ ...this.encode(credential), version: 1 });
  }

  /** Writes when the stored version is still `credential.version`; undefined on a lost race. */
  async replace(credential: Credential): Promise<Credential | undefined> {
    const { version, ...draft } = credential;
    const updated = await this.repository.update(this.encode({ ...draft, updatedAt: new Date().toISOString() }), version);
    return updated && this.decode(updated);
  }

  /**
   * Applies `change` to the newest stored credential and writes it (compare-and-swap on version,
   * retried on a lost race). `change` returns the new credential, or undefined to write nothing.
   * Resolves to the written credential, `unchanged` when `change` declined, or undefined when the
   * credential does not exist (any more).
   */
  async mutate(name: string, change: (current: Credential) => Credential | undefined): Promise<{ credential: Credential; written: boolean } | undefined> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(name);
      if (!current) return undefined;
      const next = change(current);
      if (!next) return { credential: current, written: false };
      const written = await this.replace({ ...next, version: current.version });
      if (written) return { credential: written, written: true };
      if (attempt >= 20) throw new Error(`credential "${name}" kept changing under concurrent writers; giving up`);
    }
  }
}

function withoutUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
