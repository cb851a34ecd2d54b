import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator, VerificationsBusyError, hasAnyRole, parseBasicAuth } from '../../src/security/authenticator.ts';
import { hashPassword } from '../../src/security/passwords.ts';
import type { UserRecord, UserRepository } from '../../src/store/types.ts';
import { basicAuth, waitFor } from '../support/iflow.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

describe('parseBasicAuth', () => {
  test('reads user and password', () => {
    assert.deepEqual(parseBasicAuth(basicAuth('alice', 'secret')), { user: 'alice', password: 'secret' });
  });

  test('the scheme is case-insensitive and surrounding blanks are ignored', () => {
    assert.deepEqual(parseBasicAuth(`BASIC ${b64('alice:secret')}`), { user: 'alice', password: 'secret' });
    assert.deepEqual(parseBasicAuth(`basic ${b64('alice:secret')}`), { user: 'alice', password: 'secret' });
    assert.deepEqual(parseBasicAuth(`Basic   ${b64('alice:secret')}  `), { user: 'alice', password: 'secret' });
  });

  test('the password runs from the first colon to the end and may itself hold colons', () => {
    assert.deepEqual(parseBasicAuth(basicAuth('alice', 'a:b:c')), { user: 'alice', password: 'a:b:c' });
    assert.deepEqual(parseBasicAuth(basicAuth('alice', '')), { user: 'alice', password: '' });
  });

  test('user and password are UTF-8', () => {
    assert.deepEqual(parseBasicAuth(basicAuth('jürgen', 'pässwörd')), { user: 'jürgen', password: 'pässwörd' });
  });

  test('missing and malformed headers give undefined', () => {
    for (const header of [
      undefined,
      '',
      'Basic',
      'Basic ',
      'Basic    ',
      `Basic${b64('alice:secret')}`, // no blank after the scheme
      `Bearer ${b64('alice:secret')}`,
      `Digest ${b64('alice:secret')}`,
      `Basic ${b64('alice')}`, // no colon
      `Basic ${b64(':secret')}`, // empty user name
      `Basic ${b64(':')}`,
      'Basic !!!!', // nothing base64 in it
      b64('alice:secret'), // no scheme at all
    ]) {
      assert.equal(parseBasicAuth(header), undefined, `parsed ${JSON.stringify(header)}`);
    }
  });
});

describe('hasAnyRole', () => {
  test('admin may do everything; others need one of the roles', () => {
    assert.equal(hasAnyRole({ name: 'a', roles: ['admin'] }, ['monitor']), true);
    assert.equal(hasAnyRole({ name: 'a', roles: ['admin'] }, []), true);
    assert.equal(hasAnyRole({ name: 'm', roles: ['monitor'] }, ['monitor']), true);
    assert.equal(hasAnyRole({ name: 'm', roles: ['monitor'] }, ['admin']), false);
    assert.equal(hasAnyRole({ name: 's', roles: ['ESBMessaging.send'] }, ['monitor', 'ESBMessaging.send']), true);
    assert.equal(hasAnyRole({ name: 's', roles: ['ESBMessaging.send'] }, ['monitor']), false);
    assert.equal(hasAnyRole({ name: 'n', roles: [] }, ['monitor']), false);
    // role names are exact, not prefixes or case-folded
    assert.equal(hasAnyRole({ name: 'x', roles: ['Admin', 'administrator'] }, ['monitor']), false);
  });
});

/** An in-memory user repository that counts reads, can tell when a read happened and can hold reads back. */
class MemoryUsers implements UserRepository {
  readonly records = new Map<string, UserRecord>();
  exclusively = <T>(fn: () => Promise<T>) => fn();
  reads = 0;
  onGet: ((name: string) => void) | undefined;
  /** While set, every read waits for it (verifications stay in flight). */
  gate: Promise<void> | undefined;

  async get(name: string) {
    if (this.gate) await this.gate;
    this.reads++;
    const record = this.records.get(name);
    this.onGet?.(name);
    return record && { ...record, roles: [...record.roles] };
  }
  async list() {
    return [...this.records.values()];
  }
  async create(user: UserRecord) {
    if (this.records.has(user.name)) return false;
    this.records.set(user.name, { ...user });
    return true;
  }
  async update(user: UserRecord) {
    if (!this.records.has(user.name)) return false;
    this.records.set(user.name, { ...user });
    return true;
  }
  async delete(name: string) {
    return this.records.delete(name);
  }
  async count() {
    return this.records.size;
  }
  watch() {
    return () => {};
  }
}

async function userRecord(name: string, password: string, roles: string[]): Promise<UserRecord> {
  const now = new Date().toISOString();
  return { name, passwordHash: await hashPassword(password), roles, createdAt: now, updatedAt: now };
}

/**
 * alice (password "alice-password", role monitor) in a store, and an authenticator on a clock the test moves (logins
 * last 60 s and are verified again in their last 10 s), with her header and a connection to send it on.
 */
async function aliceOnAClock() {
  const users = new MemoryUsers();
  const alice = await userRecord('alice', 'alice-password', ['monitor']);
  await users.create(alice);
  const clock = { now: 1_000_000 };
  const auth = new Authenticator(users, { ttlMs: 60_000, refreshAheadMs: 10_000, now: () => clock.now });
  return { users, alice, auth, clock, header: basicAuth('alice', 'alice-password'), connection: {} };
}

/** The two ways a change reaches the authenticator: by the user's name (the admin API, a per-row announcement), or for every user. */
const INVALIDATIONS = [
  { way: "invalidate('alice')", invalidate: (auth: Authenticator) => auth.invalidate('alice') },
  { way: 'invalidate()', invalidate: (auth: Authenticator) => auth.invalidate() },
];

/**
 * Starts alice's login with `sent` (by default her old password) and, once it has read her record (old hash) and is
 * running scrypt, changes her password to "new-password" as the admin API does (update, then `invalidate`); the
 * login is still in flight. `oldHeader` is the header that login sent.
 */
async function loginDuringPasswordChange(invalidate: (auth: Authenticator) => void, sent = 'old-password') {
  const users = new MemoryUsers();
  const alice = await userRecord('alice', 'old-password', ['admin']);
  await users.create(alice);
  const newHash = await hashPassword('new-password');
  const auth = new Authenticator(users);
  const oldHeader = basicAuth('alice', sent);
  let recordRead!: () => void;
  const read = new Promise<void>((resolve) => (recordRead = resolve));
  users.onGet = () => recordRead();
  const inFlight = auth.authenticate(oldHeader);
  await read;
  users.onGet = undefined;
  await users.update({ ...alice, passwordHash: newHash });
  invalidate(auth);
  return { auth, users, oldHeader, inFlight };
}

describe('Authenticator', () => {
  test('accepts the right password, rejects a wrong one, an unknown user and a malformed header', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor', 'ESBMessaging.send']));
    const auth = new Authenticator(users);

    assert.deepEqual(await auth.authenticate(basicAuth('alice', 'alice-password')), { name: 'alice', roles: ['monitor', 'ESBMessaging.send'] });
    assert.equal(await auth.authenticate(basicAuth('alice', 'wrong-password')), undefined);
    assert.equal(await auth.authenticate(basicAuth('alice', 'ALICE-PASSWORD')), undefined);
    assert.equal(await auth.authenticate(basicAuth('bob', 'alice-password')), undefined);
    assert.equal(await auth.authenticate(basicAuth('Alice', 'alice-password')), undefined);

    const reads = users.reads;
    assert.equal(await auth.authenticate(undefined), undefined);
    assert.equal(await auth.authenticate('Bearer abc'), undefined);
    assert.equal(await auth.authenticate(`Basic ${b64('no-colon')}`), undefined);
    assert.equal(users.reads, reads, 'a malformed header never reaches the store');
  });

  test('the authenticated user cannot be altered by its holder', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    const auth = new Authenticator(users);
    const user = await auth.authenticate(basicAuth('alice', 'alice-password'));
    assert.ok(user);
    assert.ok(Object.isFrozen(user.roles));
    assert.throws(() => (user.roles as string[]).push('admin'));
    const again = await auth.authenticate(basicAuth('alice', 'alice-password'));
    assert.deepEqual(again?.roles, ['monitor']);
  });

  test('a verified login is served from the cache', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    const auth = new Authenticator(users);

    assert.ok(await auth.authenticate(basicAuth('alice', 'alice-password')));
    assert.equal(users.reads, 1);
    const started = performance.now();
    for (let i = 0; i < 20; i++) assert.ok(await auth.authenticate(basicAuth('alice', 'alice-password')));
    assert.equal(users.reads, 1, 'cached logins do not read the store');
    assert.ok(performance.now() - started < 500, 'cached logins do not run scrypt');

    assert.equal(await auth.authenticate(basicAuth('alice', 'wrong-password')), undefined);
    assert.equal(await auth.authenticate(basicAuth('alice', 'wrong-password')), undefined);
    assert.equal(users.reads, 2, 'a wrong password is checked once, then refused from memory (next test)');
    assert.equal(await auth.authenticate(basicAuth('alice', 'other-wrong-password')), undefined);
    assert.equal(users.reads, 3, 'every other wrong password is checked');
  });

  for (const { way, invalidate } of INVALIDATIONS) {
    test(`${way} drops cached logins: a changed password or a deleted user stops working at once`, async () => {
      const users = new MemoryUsers();
      const alice = await userRecord('alice', 'old-password', ['monitor']);
      await users.create(alice);
      const auth = new Authenticator(users);
      const oldHeader = basicAuth('alice', 'old-password');
      const connection = {};
      assert.ok(await auth.authenticate(oldHeader));
      assert.ok(auth.cachedOn(connection, oldHeader));

      await users.update({ ...alice, passwordHash: await hashPassword('new-password') });
      invalidate(auth);
      assert.equal(auth.cachedOn(connection, oldHeader), undefined, 'what the connection remembered ends too');
      assert.equal(await auth.authenticate(oldHeader), undefined);
      assert.ok(await auth.authenticate(basicAuth('alice', 'new-password')));

      await users.delete('alice');
      invalidate(auth);
      assert.equal(await auth.authenticate(basicAuth('alice', 'new-password')), undefined);
    });

    test(`changed roles take effect after ${way}`, async () => {
      const users = new MemoryUsers();
      const alice = await userRecord('alice', 'alice-password', ['admin']);
      await users.create(alice);
      const auth = new Authenticator(users);
      const header = basicAuth('alice', 'alice-password');
      assert.deepEqual((await auth.authenticate(header))?.roles, ['admin']);
      await users.update({ ...alice, roles: ['monitor'] });
      invalidate(auth);
      assert.deepEqual((await auth.authenticate(header))?.roles, ['monitor']);
    });

    test(`a refusal decided while a user changes is not remembered (the change may make that header right), ${way}`, async () => {
      // Checked against the old hash, so refused; meanwhile the admin sets exactly the password it sent.
      const { auth, users, oldHeader: header, inFlight } = await loginDuringPasswordChange(invalidate, 'new-password');
      assert.equal(await inFlight, undefined);
      assert.deepEqual(await auth.authenticate(header), { name: 'alice', roles: ['admin'] }, 'checked again, not refused from memory');
      assert.equal(users.reads, 2);
    });

    test(`a login arriving after a user change does not join a verification that started before it, ${way}`, async () => {
      const { auth, users, oldHeader, inFlight } = await loginDuringPasswordChange(invalidate);
      // Started after the change: verified against the new hash, not handed the answer of the one running.
      const after = auth.authenticate(oldHeader);
      await inFlight;
      assert.equal(await after, undefined);
      assert.equal(users.reads, 2);
    });

    test(`a login verified while the password changes is not cached past the change, ${way}`, async () => {
      const { auth, oldHeader, inFlight } = await loginDuringPasswordChange(invalidate);
      // The request that started before the change may still pass...
      await inFlight;
      // ...but the old password must not keep working from the cache afterwards.
      assert.equal(await auth.authenticate(oldHeader), undefined);
    });
  }

  test('invalidate(name) also ends a login a connection holds after a background refresh replaced it in the cache', async () => {
    const { users, auth, clock, header, connection } = await aliceOnAClock();
    assert.ok(await auth.authenticate(header));
    assert.ok(auth.cachedOn(connection, header));
    clock.now += 55_000; // due: this request starts a refresh, which caches a new login; the connection keeps the old one
    assert.ok(auth.cachedOn(connection, header));
    await waitFor(() => auth.verificationsRunning === 0, { what: 'the refresh to finish' });
    assert.equal(users.reads, 2);

    await users.delete('alice');
    auth.invalidate('alice');
    assert.equal(auth.cachedOn(connection, header), undefined, 'the connection lets the deleted user through no more');
    assert.equal(auth.cachedOn({}, header), undefined);
  });

  test('isKnownUser: names whose record was found at their last verification, for log lines about refused callers', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    const auth = new Authenticator(users);
    assert.equal(auth.isKnownUser('alice'), false, 'nothing is known before a verification');
    assert.equal(await auth.authenticate(basicAuth('alice', 'wrong-password')), undefined);
    assert.equal(await auth.authenticate(basicAuth('mallory', 'alice-password')), undefined);
    assert.equal(auth.isKnownUser('alice'), true, 'a wrong password for an existing user');
    assert.equal(auth.isKnownUser('mallory'), false);
    await users.delete('alice');
    auth.invalidate('alice');
    assert.equal(auth.isKnownUser('alice'), false, 'forgotten with a change to the user');
  });

  test("invalidate(name) drops only that user's logins and refusals: other users stay cached and refused from memory", async () => {
    const users = new MemoryUsers();
    const alice = await userRecord('alice', 'alice-password', ['monitor']);
    await users.create(alice);
    await users.create(await userRecord('bob', 'bob-password', ['monitor']));
    const auth = new Authenticator(users);
    const aliceHeader = basicAuth('alice', 'alice-password');
    const bobHeader = basicAuth('bob', 'bob-password');
    const bobWrong = basicAuth('bob', 'typo-password');
    const carol = basicAuth('carol', 'carol-password');
    const aliceConnection = {};
    const bobConnection = {};
    assert.ok(await auth.authenticate(aliceHeader));
    assert.ok(await auth.authenticate(bobHeader));
    assert.equal(await auth.authenticate(bobWrong), undefined);
    assert.equal(await auth.authenticate(carol), undefined, 'no such user yet');
    assert.ok(auth.cachedOn(aliceConnection, aliceHeader));
    assert.ok(auth.cachedOn(bobConnection, bobHeader));
    assert.equal(users.reads, 4);

    await users.update({ ...alice, passwordHash: await hashPassword('alice-password-2') });
    auth.invalidate('alice');
    assert.equal(auth.cachedOn(aliceConnection, aliceHeader), undefined, "alice's connection lets her old password through no more");
    assert.deepEqual(auth.cachedOn(bobConnection, bobHeader), { name: 'bob', roles: ['monitor'] }, "bob's connection goes on");
    assert.deepEqual(auth.cachedOn({}, bobHeader), { name: 'bob', roles: ['monitor'] }, "and bob's login is still cached for new connections");
    assert.equal(await auth.authenticate(bobWrong), undefined);
    assert.equal(users.reads, 4, "nothing of bob's was verified again");
    assert.equal(await auth.authenticate(aliceHeader), undefined);
    assert.equal(users.reads, 5, "alice's old password is checked again, and refused");

    // carol is created with the password a client kept sending: its refusal goes with the change.
    await users.create(await userRecord('carol', 'carol-password', ['monitor']));
    auth.invalidate('carol');
    assert.deepEqual(await auth.authenticate(carol), { name: 'carol', roles: ['monitor'] });
    assert.deepEqual(auth.cachedOn(bobConnection, bobHeader), { name: 'bob', roles: ['monitor'] });
    assert.equal(users.reads, 6);
  });

  test('cachedOn: a connection repeats its last proved login; other headers, changes and unverified logins are not let through', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    await users.create(await userRecord('bob', 'bob-password', ['admin']));
    const auth = new Authenticator(users);
    const alice = basicAuth('alice', 'alice-password');
    const bob = basicAuth('bob', 'bob-password');
    const connection = {};

    assert.equal(auth.cachedOn(connection, alice), undefined, 'nothing is known before authenticate() verified it');
    assert.equal(auth.cachedOn(connection, undefined), undefined);
    assert.ok(await auth.authenticate(alice));
    assert.deepEqual(auth.cachedOn(connection, alice), { name: 'alice', roles: ['monitor'] });
    assert.deepEqual(auth.cachedOn(connection, alice), { name: 'alice', roles: ['monitor'] }, 'the repeat on the same connection');
    assert.equal(auth.cachedOn(connection, basicAuth('alice', 'wrong-password')), undefined);
    assert.equal(auth.cachedOn(connection, bob), undefined, 'the connection never lends its login to another header');
    assert.deepEqual(auth.cachedOn({}, alice), { name: 'alice', roles: ['monitor'] }, 'another connection finds the verified login by its hash');

    auth.invalidate();
    assert.equal(auth.cachedOn(connection, alice), undefined, 'a change to any user ends what the connection remembered');
    assert.equal(users.reads, 1);
  });

  test('a burst of logins with the same header, before any is cached, costs one verification', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    const auth = new Authenticator(users);
    const header = basicAuth('alice', 'alice-password');

    const burst = await Promise.all(Array.from({ length: 32 }, () => auth.authenticate(header)));
    for (const user of burst) assert.deepEqual(user, { name: 'alice', roles: ['monitor'] });
    assert.equal(users.reads, 1, 'one store read and one scrypt for the whole burst');

    // A wrong password in a burst is checked once for the burst too.
    const wrong = basicAuth('alice', 'wrong-password');
    const refused = await Promise.all(Array.from({ length: 8 }, () => auth.authenticate(wrong)));
    assert.deepEqual(refused, new Array(8).fill(undefined));
    assert.equal(users.reads, 2);
  });

  test("a refused header is refused from memory for a while, then checked again; a change to its user ends that at once", async () => {
    const users = new MemoryUsers();
    const alice = await userRecord('alice', 'alice-password', ['monitor']);
    await users.create(alice);
    let now = 1_000_000;
    const auth = new Authenticator(users, { refusedTtlMs: 10_000, now: () => now });
    const wrong = basicAuth('alice', 'typo-password');
    const unknown = basicAuth('mallory', 'alice-password');

    // A client retrying with a wrong password, or as a user that does not exist, costs one scrypt per period.
    for (let i = 0; i < 5; i++) {
      assert.equal(await auth.authenticate(wrong), undefined);
      assert.equal(await auth.authenticate(unknown), undefined);
    }
    assert.equal(users.reads, 2);
    assert.deepEqual(await auth.authenticate(basicAuth('alice', 'alice-password')), { name: 'alice', roles: ['monitor'] }, 'the right password is not held up');
    assert.equal(users.reads, 3);

    now += 10_001;
    assert.equal(await auth.authenticate(wrong), undefined);
    assert.equal(users.reads, 4, 'checked again once the period is over');
    assert.equal(await auth.authenticate(wrong), undefined);
    assert.equal(users.reads, 4);

    // The admin sets her password to what the client sends: the refusal is forgotten with the change.
    await users.update({ ...alice, passwordHash: await hashPassword('typo-password') });
    auth.invalidate('alice');
    assert.deepEqual(await auth.authenticate(wrong), { name: 'alice', roles: ['monitor'] });
    assert.equal(users.reads, 5);
  });

  test('a login in use near its expiry is verified again in the background, so the connection never waits for it', async () => {
    const { users, auth, clock, header, connection } = await aliceOnAClock();
    assert.ok(await auth.authenticate(header));
    assert.deepEqual(auth.cachedOn(connection, header), { name: 'alice', roles: ['monitor'] });
    assert.equal(users.reads, 1);

    clock.now += 45_000; // not yet due
    assert.ok(auth.cachedOn(connection, header));
    assert.equal(users.reads, 1);

    clock.now += 10_000; // 5 s left: this request is served at once and starts one re-verification
    let refreshRead!: () => void;
    const refreshStarted = new Promise<void>((resolve) => (refreshRead = resolve));
    users.onGet = () => refreshRead();
    assert.deepEqual(auth.cachedOn(connection, header), { name: 'alice', roles: ['monitor'] });
    assert.ok(auth.cachedOn(connection, header), 'requests meanwhile are served too, and start nothing more');
    await refreshStarted;
    users.onGet = undefined;
    await waitFor(() => auth.verificationsRunning === 0, { what: 'the re-verification to finish' });
    assert.equal(users.reads, 2, 'one re-verification for the whole window');

    clock.now += 6_000; // the first login has expired: the connection finds the renewed one, synchronously
    assert.deepEqual(auth.cachedOn(connection, header), { name: 'alice', roles: ['monitor'] });
    assert.deepEqual(auth.cachedOn({}, header), { name: 'alice', roles: ['monitor'] }, 'as does a new connection');
    assert.equal(users.reads, 2);
  });

  test('a background re-verification that fails leaves the login to expire, and then it is checked again', async () => {
    const { users, alice, auth, clock, header, connection } = await aliceOnAClock();
    assert.ok(await auth.authenticate(header));
    assert.ok(auth.cachedOn(connection, header));

    // Another instance changed her password in the shared store (this one was not told): the refresh fails.
    await users.update({ ...alice, passwordHash: await hashPassword('changed-elsewhere') });
    clock.now += 55_000;
    assert.ok(auth.cachedOn(connection, header), 'still valid for its last seconds');
    assert.equal(auth.verificationsRunning, 1);
    await waitFor(() => auth.verificationsRunning === 0, { what: 'the re-verification to finish' });
    assert.equal(users.reads, 2);
    clock.now += 6_000;
    assert.equal(auth.cachedOn(connection, header), undefined, 'expired, and nothing renewed it');
    assert.equal(await auth.authenticate(header), undefined);
    assert.equal(users.reads, 3, 'checked again, and refused');
  });

  test('at most maxVerifications different logins are verified at once and maxWaiting wait; another is refused as busy, cached logins are not', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    const busy: number[] = [];
    const auth = new Authenticator(users, { maxVerifications: 2, maxWaiting: 1, onBusy: (running) => busy.push(running) });
    const alice = basicAuth('alice', 'alice-password');
    assert.ok(await auth.authenticate(alice));
    const readsBefore = users.reads;

    let open!: () => void;
    users.gate = new Promise<void>((resolve) => (open = resolve));
    const guesses = [1, 2, 3].map((n) => auth.authenticate(basicAuth('alice', `guess-${n}`)));
    assert.equal(auth.verificationsRunning, 2);
    assert.equal(auth.verificationsWaiting, 1);
    await assert.rejects(auth.authenticate(basicAuth('alice', 'guess-4')), (err: Error) => err instanceof VerificationsBusyError && err.running === 2);
    assert.deepEqual(busy, [2], 'told once per refused login');
    const joined = auth.authenticate(basicAuth('alice', 'guess-3'));
    assert.deepEqual(await auth.authenticate(alice), { name: 'alice', roles: ['monitor'] }, 'a cached login needs no verification');
    assert.deepEqual(auth.cachedOn({}, alice), { name: 'alice', roles: ['monitor'] });

    open();
    users.gate = undefined;
    assert.deepEqual(await Promise.all([...guesses, joined]), [undefined, undefined, undefined, undefined], 'a header running or waiting is joined, not refused');
    assert.equal(users.reads - readsBefore, 3, 'the waiting one ran in a slot that freed up');
    assert.equal(auth.verificationsRunning, 0);
    assert.equal(auth.verificationsWaiting, 0);
    assert.equal(await auth.authenticate(basicAuth('alice', 'guess-4')), undefined, 'once they finished, the refused login is verified (and refused as wrong)');
    assert.deepEqual(busy, [2]);
  });

  test('at capacity a login due for renewal is not verified in the background: a later request starts it', async () => {
    const users = new MemoryUsers();
    await users.create(await userRecord('alice', 'alice-password', ['monitor']));
    let now = 1_000_000;
    const auth = new Authenticator(users, { ttlMs: 60_000, refreshAheadMs: 10_000, maxVerifications: 1, now: () => now });
    const alice = basicAuth('alice', 'alice-password');
    const connection = {};
    assert.ok(await auth.authenticate(alice));
    assert.ok(auth.cachedOn(connection, alice));

    let open!: () => void;
    users.gate = new Promise<void>((resolve) => (open = resolve));
    const guess = auth.authenticate(basicAuth('alice', 'guess'));
    now += 55_000;
    assert.ok(auth.cachedOn(connection, alice), 'still valid, served');
    assert.equal(auth.verificationsRunning, 1, 'only the guess: the renewal did not start');
    open();
    users.gate = undefined;
    assert.equal(await guess, undefined);
    const reads = users.reads;
    assert.ok(auth.cachedOn(connection, alice));
    await waitFor(() => auth.verificationsRunning === 0 && users.reads === reads + 1, { what: 'the renewal to run' });
    now += 6_000;
    assert.deepEqual(auth.cachedOn(connection, alice), { name: 'alice', roles: ['monitor'] }, 'renewed before it expired');
  });
});
