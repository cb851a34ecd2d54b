import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { Semaphore } from '../semaphore.ts';
import type { UserRepository } from '../store/types.ts';
import { hashPassword, verifyPassword } from './passwords.ts';

export interface AuthenticatedUser {
  name: string;
  roles: readonly string[];
}

const CACHE_TTL_MS = 60_000;
/** A cached login used this close to its expiry is verified again in the background, so busy clients never wait for it. */
const REFRESH_AHEAD_MS = 10_000;
const CACHE_MAX = 10_000;
/** A refused header is refused again from memory for this long: a client retrying a wrong password costs no scrypt. */
const REFUSED_TTL_MS = 10_000;
/** At most this many refused headers are remembered (kept apart, so a flood of wrong ones never evicts good logins). */
const REFUSED_MAX = 10_000;
/** invalidate(name) counts changes per user name; past this many names it drops everything and starts over. */
const CHANGED_USERS_MAX = 10_000;
/** At most this many user names are remembered as existing (for log lines); the set is emptied, not grown, past it. */
const KNOWN_USERS_MAX = 10_000;
/**
 * At most this many different headers are verified at once (each a ~50 ms scrypt on libuv's pool of four threads,
 * which also writes the log), and at most MAX_WAITING more wait for a turn (a few seconds' worth: enough for the
 * clients of a busy server to log in again after a user change dropped the cache); beyond that a login is refused.
 */
const MAX_VERIFICATIONS = 16;
const MAX_WAITING = 64;

/** No verification could start or wait: MAX_VERIFICATIONS are running and MAX_WAITING waiting already. */
export class VerificationsBusyError extends Error {
  override name = 'VerificationsBusyError';
  constructor(readonly running: number) {
    super(`${running} logins are being verified already`);
  }
}

export interface AuthenticatorOptions {
  /** How long a verified header is trusted (ms). Default 60 s. */
  ttlMs?: number;
  /** A login used within this long of its expiry is re-verified in the background (ms). Default 10 s. */
  refreshAheadMs?: number;
  /** How long a refused header is refused without another verification (ms). Default 10 s. */
  refusedTtlMs?: number;
  /** At most this many different headers are verified at once. Default 16. */
  maxVerifications?: number;
  /** At most this many more wait for a turn; another is refused (VerificationsBusyError). Default 64. */
  maxWaiting?: number;
  /** Told of every login refused as busy, with how many verifications are running (for a warning). */
  onBusy?: (running: number) => void;
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
}

/** Parses `Basic base64(user:password)`; undefined when the header is missing or malformed. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || header.length < 7 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const bytes = Buffer.from(header.slice(6).trim(), 'base64');
  // Not UTF-8: decoding would turn each bad byte into U+FFFD, and different passwords into the same one.
  if (!isUtf8(bytes)) return undefined;
  const decoded = bytes.toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** A login's cache key: the SHA-256 of its Authorization header, never the header itself. */
function cacheKey(authorization: string): string {
  return hash('sha256', authorization, 'base64');
}

/** Something the authenticator decided about a header: until when, and in which generation of the users. */
interface Remembered {
  expiresAt: number;
  generation: number;
}

/**
 * A user's standing, shared by every cached login of that user: invalidate(name) revokes it, which ends all of
 * them at once, wherever they are held (the cache, a keep-alive connection, a login a refresh has replaced).
 */
interface Standing {
  revoked: boolean;
}

/** Where the users (any change) and one user (its own changes) stood when something was decided about it. */
interface UserStamp {
  generation: number;
  userGeneration: number;
}

/** A refused header, for the user name it carries as that user stood when it was refused. */
interface Refusal extends Remembered, UserStamp {
  userName: string;
}

/** Stores `entry` under `key` in a map that is emptied, rather than grown, once it holds `max` entries. */
function remember<T>(map: Map<string, T>, key: string, entry: T, max: number): void {
  if (map.size >= max) map.clear();
  map.set(key, entry);
}

interface CachedLogin extends Remembered {
  user: AuthenticatedUser;
  standing: Standing;
  /** Set once a background re-verification of this login has started. */
  refreshing?: boolean;
}

/**
 * Checks HTTP Basic credentials against the users in the store.
 * scrypt is deliberately slow, so a verified header is remembered for a minute under its SHA-256
 * (the shared cache never holds the header itself); a change to a user drops that user's logins. A keep-alive
 * connection also remembers the exact header it last proved, for as long as it is open, so its next
 * requests skip even the hash: that header is compared only with what the same connection sends. A login
 * still in use in its last seconds is verified again in the background, so a busy client does not stall
 * on scrypt every minute. A refused header is refused again from memory for a few seconds (or until
 * its user changes), so a client retrying with a wrong password costs one scrypt per period, not one
 * per request; the answer is the same 401 either way. A flood of different headers (guessed passwords)
 * meets a bound on verifications running and waiting: beyond it a login is refused as busy (the caller
 * answers 503), while cached logins go on as before.
 */
export class Authenticator {
  private readonly cache = new Map<string, CachedLogin>();
  /** Refused headers, by cache key. */
  private readonly refused = new Map<string, Refusal>();
  private readonly byConnection = new WeakMap<object, { authorization: string; login: CachedLogin }>();
  /**
   * Verifications running now, by cache key: a burst of new connections sending the same header (a client
   * opening its pool, or every connection at once when the cached login expires) waits for one scrypt, not one each.
   */
  private readonly verifying = new Map<string, { userName: string; result: Promise<AuthenticatedUser | undefined> }>();
  /**
   * The bound on verifications: those running (including those invalidate() stopped others from joining) hold a slot;
   * those waiting for a turn, first come first served, are each handed the slot of one that ends.
   */
  private readonly slots: Semaphore;
  private dummyHash: Promise<string> | undefined;
  /** Bumped by invalidate(): a verification that read the store before a change must not be cached after it. */
  private generation = 0;
  /** Bumped per user by invalidate(name), the same way for that user's verifications and refusals; names never changed are absent. */
  private readonly userGenerations = new Map<string, number>();
  /** The standing of each user with cached logins (created by the first, replaced once revoked). */
  private readonly standings = new Map<string, Standing>();
  /** Names of users whose record was found at their last verification (for logging refusals; bounded). */
  private readonly existingUsers = new Set<string>();

  private readonly ttlMs: number;
  private readonly refreshAheadMs: number;
  private readonly refusedTtlMs: number;
  private readonly maxWaiting: number;
  private readonly onBusy: ((running: number) => void) | undefined;
  private readonly now: () => number;

  constructor(
    private readonly users: Pick<UserRepository, 'get'>,
    options: AuthenticatorOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? CACHE_TTL_MS;
    this.refreshAheadMs = options.refreshAheadMs ?? REFRESH_AHEAD_MS;
    this.refusedTtlMs = options.refusedTtlMs ?? REFUSED_TTL_MS;
    this.slots = new Semaphore(options.maxVerifications ?? MAX_VERIFICATIONS);
    this.maxWaiting = options.maxWaiting ?? MAX_WAITING;
    this.onBusy = options.onBusy;
    this.now = options.now ?? Date.now;
  }

  /**
   * The hot path, synchronous: the user of a header verified in the last minute, for a request arriving
   * on `connection` (its socket). A repeat of the connection's last header costs a string compare; any
   * other header is found by its SHA-256 alone (an equal digest is an equal header; comparing digests
   * tells an attacker nothing about the password). Undefined when not cached: `authenticate` decides then.
   */
  cachedOn(connection: object, authorization: string | undefined): AuthenticatedUser | undefined {
    if (!authorization) return undefined;
    const now = this.now();
    const last = this.byConnection.get(connection);
    if (last !== undefined && last.authorization === authorization && this.isLoginValid(last.login, now)) {
      this.refreshIfDue(last.login, authorization, now);
      return last.login.user;
    }
    const key = cacheKey(authorization);
    const login = this.cachedUnder(key);
    if (login === undefined) return undefined;
    this.byConnection.set(connection, { authorization, login });
    this.refreshIfDue(login, authorization, now, key);
    return login.user;
  }

  /**
   * A valid login that is about to expire starts one re-verification in the background: its result replaces it in
   * the cache, so when it does expire the client's connections find the new one instead of all waiting for scrypt.
   * `key` is the header's cache key when the caller has it (the hash is made only when a refresh is due).
   */
  private refreshIfDue(login: CachedLogin, authorization: string, now: number, key?: string): void {
    if (login.refreshing || login.expiresAt - now > this.refreshAheadMs) return;
    // It starts only in a free slot, never waits for one: the login is still valid, a later request tries again.
    if (this.slots.full) return;
    login.refreshing = true;
    // A refresh that fails (the store is down) leaves this login to expire; whoever joins it sees the failure.
    this.verification(authorization, key ?? cacheKey(authorization), login.user.name).catch(() => {});
  }

  /** How many verifications (store read and scrypt) are running now, background refreshes included. */
  get verificationsRunning(): number {
    return this.slots.running;
  }

  /** How many verifications wait for a turn. */
  get verificationsWaiting(): number {
    return this.slots.waiting;
  }

  async authenticate(authorization: string | undefined): Promise<AuthenticatedUser | undefined> {
    if (!authorization) return undefined;
    const key = cacheKey(authorization);
    const known = this.cachedUnder(key);
    if (known) return known.user;
    const refused = this.refused.get(key);
    if (refused !== undefined && refused.expiresAt > this.now() && this.isCurrent(refused.userName, refused)) return undefined;
    const userName = parseBasicAuth(authorization)?.user ?? '';
    const stamp = this.stamp(userName);
    const user = await this.verification(authorization, key, userName);
    // Remembered only if the user did not change meanwhile (that change may be what makes this header valid).
    if (user === undefined && this.isCurrent(userName, stamp)) {
      remember(this.refused, key, { expiresAt: this.now() + this.refusedTtlMs, ...stamp, userName }, REFUSED_MAX);
    }
    return user;
  }

  /**
   * The verification running (or waiting) for this header, joined, or a new one, which runs at once or waits for a
   * turn; rejects with VerificationsBusyError when as many as allowed run and wait already.
   */
  private verification(authorization: string, key: string, userName: string): Promise<AuthenticatedUser | undefined> {
    const running = this.verifying.get(key);
    if (running) return running.result;
    if (this.slots.full && this.slots.waiting >= this.maxWaiting) {
      this.onBusy?.(this.slots.running);
      return Promise.reject(new VerificationsBusyError(this.slots.running));
    }
    const verification = this.slots
      .acquire()
      .then(() => this.verify(authorization, key).finally(() => this.slots.release()))
      .finally(() => {
        if (this.verifying.get(key)?.result === verification) this.verifying.delete(key);
      });
    this.verifying.set(key, { userName, result: verification });
    return verification;
  }

  private async verify(authorization: string, key: string): Promise<AuthenticatedUser | undefined> {
    const credentials = parseBasicAuth(authorization);
    if (!credentials) return undefined;

    const stamp = this.stamp(credentials.user);
    const record = await this.users.get(credentials.user);
    if (this.isCurrent(credentials.user, stamp)) {
      if (this.existingUsers.size >= KNOWN_USERS_MAX) this.existingUsers.clear();
      if (record) this.existingUsers.add(credentials.user);
      else this.existingUsers.delete(credentials.user);
    }
    // Unknown users still cost one scrypt, so timing does not tell which user names exist.
    const ok = await verifyPassword(credentials.password, record?.passwordHash ?? (await this.dummy()));
    if (!record || !ok) return undefined;
    const user = { name: record.name, roles: Object.freeze([...record.roles]) };
    if (this.isCurrent(credentials.user, stamp)) {
      remember(this.cache, key, { user, standing: this.standingOf(credentials.user), expiresAt: this.now() + this.ttlMs, generation: stamp.generation }, CACHE_MAX);
    }
    return user;
  }

  private cachedUnder(key: string): CachedLogin | undefined {
    const cached = this.cache.get(key);
    return cached !== undefined && this.isLoginValid(cached, this.now()) ? cached : undefined;
  }

  /** Not expired, and no full invalidate() since it was decided. */
  private isValid(entry: Remembered, now = this.now()): boolean {
    return entry.generation === this.generation && entry.expiresAt > now;
  }

  /** Valid, and its user not changed since (a connection may hold a login past invalidate(name)). */
  private isLoginValid(login: CachedLogin, now: number): boolean {
    return !login.standing.revoked && this.isValid(login, now);
  }

  private standingOf(name: string): Standing {
    let standing = this.standings.get(name);
    if (standing === undefined) this.standings.set(name, (standing = { revoked: false }));
    return standing;
  }

  /**
   * Whether `name` belonged to a user at that name's last verification: for log lines about refused callers,
   * which name only users that exist (a caller may type anything, its password included, as a user name).
   */
  isKnownUser(name: string): boolean {
    return this.existingUsers.has(name);
  }

  private userGeneration(name: string): number {
    return this.userGenerations.get(name) ?? 0;
  }

  /** Where the users and user `name` stand now, to tell later (isCurrent) whether either changed meanwhile. */
  private stamp(name: string): UserStamp {
    return { generation: this.generation, userGeneration: this.userGeneration(name) };
  }

  private isCurrent(name: string, stamp: UserStamp): boolean {
    return stamp.generation === this.generation && stamp.userGeneration === this.userGeneration(name);
  }

  /**
   * Forgets what was decided about user `name` (called when it is created, changed or deleted), or about every
   * user without a name (many may have changed). Other users' logins stay: clients of a busy server must not all
   * queue for scrypt again because one user changed.
   */
  invalidate(name?: string): void {
    if (name === undefined || this.userGenerations.size >= CHANGED_USERS_MAX) {
      this.generation++;
      this.userGenerations.clear();
      for (const standing of this.standings.values()) standing.revoked = true;
      this.standings.clear();
      this.existingUsers.clear();
      this.cache.clear();
      this.refused.clear();
      // A verification that started before the change may still answer its own callers, but nobody joins it now.
      this.verifying.clear();
      return;
    }
    // Cheap whatever the cache holds (a bulk change announces every row): the user's logins end through their
    // shared standing and its refusals through its generation; only the few verifications running are visited.
    this.userGenerations.set(name, this.userGeneration(name) + 1);
    const standing = this.standings.get(name);
    if (standing !== undefined) {
      standing.revoked = true;
      this.standings.delete(name);
    }
    this.existingUsers.delete(name);
    for (const [key, running] of this.verifying) if (running.userName === name) this.verifying.delete(key);
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
