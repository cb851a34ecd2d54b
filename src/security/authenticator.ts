import { hash } from 'node:crypto';
import type { UserRepository } from '../store/types.ts';
import { hashPassword, verifyPassword } from './passwords.ts';

export interface AuthenticatedUser {
  name: string;
  roles: readonly string[];
}

const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 10_000;

/** Parses `Basic base64(user:password)`; undefined when the header is missing or malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || header.length < 7 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Checks HTTP Basic credentials against the users in the store.
 * scrypt is deliberately slow, so a verified header is remembered for a minute under its SHA-256
 * (never the header itself); any change to a user drops the cache.
 */
/** A login's cache key: the SHA-256 of its Authorization header, never the header itself. */
function cacheKey(authorization: string): string {
  return hash('sha256', authorization, 'base64');
}

export class Authenticator {
  private readonly cache = new Map<string, { user: AuthenticatedUser; expiresAt: number }>();
  private dummyHash: Promise<string> | undefined;
  /** Bumped by invalidate(): a verification that read the store before a change must not be cached after it. */
  private generation = 0;

  constructor(private readonly users: UserRepository) {}

  /**
   * The hot path, synchronous: the user of a header verified in the last minute, found by its SHA-256
   * alone (an equal digest is an equal header; comparing digests tells an attacker nothing about the
   * password). Undefined when the header is not cached: `authenticate` decides then.
   */
  cached(authorization: string | undefined): AuthenticatedUser | undefined {
    return authorization ? this.cachedUnder(cacheKey(authorization)) : undefined;
  }

  async authenticate(authorization: string | undefined): Promise<AuthenticatedUser | undefined> {
    if (!authorization) return undefined;
    const key = cacheKey(authorization);
    const known = this.cachedUnder(key);
    if (known) return known;
    const credentials = parseBasicAuth(authorization);
    if (!credentials) return undefined;

    const generation = this.generation;
    const record = await this.users.get(credentials.user);
    // Unknown users still cost one scrypt, so timing does not tell which user names exist.
    const ok = await verifyPassword(credentials.password, record?.passwordHash ?? (await this.dummy()));
    if (!record || !ok) return undefined;
    const user = { name: record.name, roles: Object.freeze([...record.roles]) };
    if (generation === this.generation) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(key, { user, expiresAt: Date.now() + CACHE_TTL_MS });
    }
    return user;
  }

  private cachedUnder(key: string): AuthenticatedUser | undefined {
    const cached = this.cache.get(key);
    return cached && cached.expiresAt > Date.now() ? cached.user : undefined;
  }

  /** Forget every cached login: called whenever a user is changed or deleted. */
  invalidate(): void {
    this.generation++;
    this.cache.clear();
  }

  private dummy(): Promise<string> {
    this.dummyHash ??= hashPassword('not a real password');
    return this.dummyHash;
  }
}

/** admin may do everything; otherwise the user must hold one of the roles. */
export function hasAnyRole(user: AuthenticatedUser, roles: readonly string[]): boolean {
  return user.roles.includes('admin') || roles.some((role) => user.roles.includes(role));
}
