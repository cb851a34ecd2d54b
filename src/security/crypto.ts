import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';

/**
 * Secrets at rest: AES-256-GCM under the master key.
 *
 * Stored form (ASCII, self-describing): `v1.<keyId>.<iv>.<tag>.<ciphertext>`, the last three
 * base64url. `keyId` is the first 12 hex digits of HMAC-SHA256(key, "iflow master key id"): it
 * names the key without revealing it, so data encrypted under another key is recognised before
 * anything is decrypted and a wrong key gives a clear error instead of garbage. Callers pass a
 * context string (e.g. `credential:<name>`) that is bound as additional authenticated data, so a
 * blob copied from one record to another does not decrypt.
 */

export const MASTER_KEY_FILE = 'master.key';
const FORMAT = 'v1';
const IV_BYTES = 12;
const KEY_BYTES = 32;

/** A master key that is malformed, missing, or not the one the data was encrypted with. */
export class MasterKeyError extends Error {
  override name = 'MasterKeyError';
}

/** A blob that does not decrypt under this key and context (wrong key, wrong record, or tampered). */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export interface MasterKeySource {
  /** Where it came from. */
  kind: 'env' | 'file';
  /** The key file's path when kind is 'file'. */
  file?: string;
  /** True when the key file was created during this start. */
  generated: boolean;
}

export class MasterKey {
  readonly keyId: string;
  readonly #key: Buffer;

  constructor(
    key: Buffer,
    readonly source: MasterKeySource,
  ) {
    if (key.length !== KEY_BYTES) throw new MasterKeyError(`the master key must be ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
    this.keyId = createHmac('sha256', this.#key).update('iflow master key id').digest('hex').slice(0, 12);
  }

  /** Encrypts `plaintext` bound to `context`; returns the stored form. */
  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(`iflow:${context}`, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [FORMAT, this.keyId, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  /** Decrypts a stored form made by `encrypt` with the same key and context; throws DecryptionError otherwise. */
  decrypt(stored: string, context: string): string {
    const parts = stored.split('.');
    if (parts.length !== 5 || parts[0] !== FORMAT) throw new DecryptionError('not an iflow encrypted value');
    const [, keyId, iv, tag, ciphertext] = parts;
    if (keyId !== this.keyId) throw new DecryptionError(`encrypted under another master key (key id ${keyId}, this key is ${this.keyId})`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(`iflow:${context}`, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new DecryptionError('authentication failed: the value was altered or belongs to another record');
    }
  }

  encryptJson(value: unknown, context: string): string {
    return this.encrypt(JSON.stringify(value), context);
  }

  decryptJson<T>(stored: string, context: string): T {
    return JSON.parse(this.decrypt(stored, context)) as T;
  }
}

/** The key id a stored value was encrypted under, or undefined when it is not in the stored form. */
export function keyIdOf(stored: string): string | undefined {
  const parts = stored.split('.');
  return parts.length === 5 && parts[0] === FORMAT ? parts[1] : undefined;
}

/** Throws MasterKeyError when IFLOW_MASTER_KEY's text is not a key (the configuration checks it up front). */
export function checkMasterKeyText(text: string): void {
  decodeKey(text, 'IFLOW_MASTER_KEY');
}

function decodeKey(text: string, what: string): Buffer {
  const trimmed = text.trim();
  // Strict base64 (standard or url-safe alphabet, padding optional): never echo the value itself.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new MasterKeyError(`${what} is not base64: it must be ${KEY_BYTES} random bytes encoded in base64 (for example the output of "openssl rand -base64 32")`);
  }
  // Node's base64 decoder reads both the standard and the url-safe alphabet.
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new MasterKeyError(`${what} must be ${KEY_BYTES} bytes encoded in base64, but it decodes to ${key.length} bytes (generate one with "openssl rand -base64 32")`);
  }
  return key;
}

/**
 * The master key: IFLOW_MASTER_KEY when set, else `<dataDir>/master.key`, generated with mode
 * 0600 (in a 0700 directory) on first start. Throws MasterKeyError on a malformed key.
 */
export function loadMasterKey(config: Pick<Config, 'masterKey' | 'dataDir'>): MasterKey {
  if (config.masterKey !== undefined && config.masterKey !== '') {
    return new MasterKey(decodeKey(config.masterKey, 'IFLOW_MASTER_KEY'), { kind: 'env', generated: false });
  }
  const file = join(config.dataDir, MASTER_KEY_FILE);
  const description = `the master key file ${file}`;
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    // Keep the key private even when it was copied in with a looser mode.
    if ((mode & 0o077) !== 0) {
      try {
        chmodSync(file, 0o600);
      } catch {
        // read-only volume: not fatal, the key is still usable
      }
    }
    return new MasterKey(decodeKey(readFileSync(file, 'utf8'), description), { kind: 'file', file, generated: false });
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_BYTES);
  // 'wx': never overwrite a key another process wrote in the meantime.
  try {
    writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadMasterKey(config);
    throw err;
  }
  return new MasterKey(key, { kind: 'file', file, generated: true });
}
