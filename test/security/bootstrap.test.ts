import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { INITIAL_PASSWORD_FILE, ensureBootstrapAdmin } from '../../src/security/bootstrap.ts';
import type { UserRecord, UserRepository } from '../../src/store/types.ts';
import { createLogger } from '../../src/logging/index.ts';
import type { FastifyBaseLogger } from 'fastify';
import { ADMIN_PASSWORD, ADMIN_USER, LogCapture, basicAuth, startIflow, type RunningIflow } from '../support/iflow.ts';
import { withSqliteStore } from '../support/sqlite.ts';
import { hashPassword, verifyPassword } from '../../src/security/passwords.ts';

/** Runs `fn` while collecting what is written to process.stderr (and keeping it off the console). */
async function withStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const chunks: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stderr.write;
  try {
    const value = await fn();
    return { value, stderr: chunks.join('') };
  } finally {
    process.stderr.write = original;
  }
}

/** Starts iflow without IFLOW_ADMIN_PASSWORD on `dataDir`, capturing its stderr. */
function startWithoutPassword(dataDir: string, env: Record<string, string> = {}) {
  return withStderr(() => startIflow({ dataDir, env: { IFLOW_ADMIN_PASSWORD: '', ...env } }));
}

async function status(iflow: RunningIflow, auth: string, path = '/api/v1/users'): Promise<number> {
  const response = await fetch(`${iflow.url}${path}`, { headers: { authorization: auth } });
  await response.arrayBuffer();
  return response.status;
}

async function changePassword(iflow: RunningIflow, auth: string, user: string, body: Record<string, unknown>): Promise<number> {
  const response = await fetch(`${iflow.url}/api/v1/users/${user}`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

function tempDataDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'iflow-bootstrap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('an empty IFLOW_ADMIN_PASSWORD counts as unset, as does an empty IFLOW_ADMIN_USER', () => {
  assert.equal(loadConfig({ IFLOW_ADMIN_PASSWORD: '' }).adminPassword, undefined);
  assert.equal(loadConfig({}).adminPassword, undefined);
  assert.equal(loadConfig({ IFLOW_ADMIN_PASSWORD: 'chosen-password' }).adminPassword, 'chosen-password');
  assert.equal(loadConfig({ IFLOW_ADMIN_USER: '' }).adminUser, 'admin');
  assert.equal(loadConfig({ IFLOW_ADMIN_USER: 'root' }).adminUser, 'root');
});

test('without IFLOW_ADMIN_PASSWORD a password is generated once, printed to stderr only, saved 0600, and works', async (t) => {
  const dataDir = tempDataDir(t);
  const file = join(dataDir, INITIAL_PASSWORD_FILE);

  const first = await startWithoutPassword(dataDir);
  let iflow = first.value;
  try {
    assert.ok(existsSync(file), `${file} was written`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const password = readFileSync(file, 'utf8').trim();
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(password, ADMIN_PASSWORD);

    // Printed once, to stderr, with the user name and where it is saved...
    assert.ok(first.stderr.includes(password), 'the password is printed to stderr');
    assert.ok(first.stderr.includes(`"${ADMIN_USER}"`));
    assert.ok(first.stderr.includes(file));
    // ...and never through the logger, whose lines are shipped to log stores.
    assert.ok(!iflow.logs.text.includes(password), 'the generated password is in a log line');
    assert.ok(
      iflow.logs.records().some((r) => r.user === ADMIN_USER && r.file === file && /generated password/.test(String(r.msg))),
      'a log line says a password was generated and where it is (without the password)',
    );

    const stored = await iflow.app.store.users.get(ADMIN_USER);
    assert.deepEqual(stored?.roles, ['admin']);
    assert.match(stored?.passwordHash ?? '', /^scrypt\$/);
    assert.ok(!stored?.passwordHash.includes(password));

    assert.equal(await status(iflow, basicAuth(ADMIN_USER, password)), 200);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, ADMIN_PASSWORD)), 401);
    await iflow.close();

    // A second start on the same data dir keeps the admin and the password; nothing new is generated or printed.
    const second = await startWithoutPassword(dataDir);
    iflow = second.value;
    assert.ok(!second.stderr.includes('created administrator'), second.stderr);
    assert.ok(!second.stderr.includes(password));
    assert.equal(readFileSync(file, 'utf8').trim(), password);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, password)), 200);
    assert.equal((await iflow.app.store.users.list()).length, 1);
    assert.ok(!iflow.logs.text.includes(password));
  } finally {
    await iflow.close();
  }
});

test("changing the admin's password through the API deletes the initial-password file for good", async (t) => {
  const dataDir = tempDataDir(t);
  const file = join(dataDir, INITIAL_PASSWORD_FILE);
  let iflow = (await startWithoutPassword(dataDir)).value;
  try {
    const generated = readFileSync(file, 'utf8').trim();
    const auth = basicAuth(ADMIN_USER, generated);

    // Changing someone else's password, or only the admin's roles, leaves the file alone.
    const created = await fetch(`${iflow.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'other', password: 'other-password-1', roles: ['monitor'] }),
    });
    assert.equal(created.status, 201);
    assert.equal(await changePassword(iflow, auth, 'other', { password: 'other-password-2' }), 200);
    assert.equal(await changePassword(iflow, auth, ADMIN_USER, { roles: ['admin', 'monitor'] }), 200);
    assert.ok(existsSync(file), 'still there');

    assert.equal(await changePassword(iflow, auth, ADMIN_USER, { password: 'my-own-admin-password' }), 200);
    assert.ok(!existsSync(file), 'the initial-password file is gone once the admin chose a password');
    assert.equal(await status(iflow, auth), 401);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, 'my-own-admin-password')), 200);
    assert.ok(!iflow.logs.text.includes('my-own-admin-password'));
    await iflow.close();

    // A restart does not bring a generated password back.
    const again = await startWithoutPassword(dataDir);
    iflow = again.value;
    assert.ok(!existsSync(file));
    assert.ok(!again.stderr.includes('created administrator'), again.stderr);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, 'my-own-admin-password')), 200);
  } finally {
    await iflow.close();
  }
});

test('IFLOW_ADMIN_USER names the generated administrator', async (t) => {
  const dataDir = tempDataDir(t);
  const { value: iflow, stderr } = await startWithoutPassword(dataDir, { IFLOW_ADMIN_USER: 'root' });
  t.after(() => iflow.close());
  const password = readFileSync(join(dataDir, INITIAL_PASSWORD_FILE), 'utf8').trim();
  assert.ok(stderr.includes('"root"'));
  assert.equal(await status(iflow, basicAuth('root', password)), 200);
  assert.equal(await iflow.app.store.users.get(ADMIN_USER), undefined);
  assert.deepEqual((await iflow.app.store.users.get('root'))?.roles, ['admin']);
});

test('with IFLOW_ADMIN_PASSWORD that password works and nothing is generated, printed or saved', async (t) => {
  const dataDir = tempDataDir(t);
  const { value: iflow, stderr } = await withStderr(() => startIflow({ dataDir }));
  t.after(() => iflow.close());
  assert.ok(!stderr.includes('created administrator'), stderr);
  assert.ok(!stderr.includes(ADMIN_PASSWORD));
  assert.ok(!existsSync(join(dataDir, INITIAL_PASSWORD_FILE)));
  assert.equal(await status(iflow, iflow.adminAuth), 200);
  assert.equal(await status(iflow, basicAuth(ADMIN_USER, `${ADMIN_PASSWORD}x`)), 401);
  const stored = await iflow.app.store.users.get(ADMIN_USER);
  assert.deepEqual(stored?.roles, ['admin']);
  assert.match(stored?.passwordHash ?? '', /^scrypt\$/);
  assert.ok(!iflow.logs.text.includes(ADMIN_PASSWORD), 'IFLOW_ADMIN_PASSWORD is in a log line');
});

test('IFLOW_ADMIN_PASSWORD is the admin password at every start, and takes over from a generated one', async (t) => {
  const dataDir = tempDataDir(t);
  const file = join(dataDir, INITIAL_PASSWORD_FILE);
  let iflow = (await startWithoutPassword(dataDir)).value;
  try {
    const generated = readFileSync(file, 'utf8').trim();
    await iflow.close();

    // The operator now sets IFLOW_ADMIN_PASSWORD: it replaces the generated password.
    iflow = await startIflow({ dataDir });
    assert.equal(await status(iflow, iflow.adminAuth), 200);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, generated)), 401);

    // A password changed through the API lasts until the next start, which resets it to IFLOW_ADMIN_PASSWORD.
    assert.equal(await changePassword(iflow, iflow.adminAuth, ADMIN_USER, { password: 'changed-by-api-1' }), 200);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, 'changed-by-api-1')), 200);
    await iflow.close();
    iflow = await startIflow({ dataDir });
    assert.equal(await status(iflow, iflow.adminAuth), 200);
    assert.equal(await status(iflow, basicAuth(ADMIN_USER, 'changed-by-api-1')), 401);
  } finally {
    await iflow.close();
  }
});

/**
 * The users of a real store where another instance sharing it creates `winner` just before this one's create()
 * (after this one looked and found no administrator).
 */
function losingTheRace(users: UserRepository, winner: UserRecord): UserRepository {
  return {
    get: (name) => users.get(name),
    list: () => users.list(),
    create: async (user) => {
      assert.equal(await users.create(winner), true, "the other instance's create");
      return users.create(user);
    },
    update: (user) => users.update(user),
    delete: (name) => users.delete(name),
    count: () => users.count(),
    exclusively: (fn) => users.exclusively(fn),
    watch: (watcher) => users.watch(watcher),
  };
}

test('an instance that loses the race to create the generated administrator neither saves nor prints a password, nor logs it created', async (t) => {
  const dataDir = tempDataDir(t);
  await withSqliteStore(async (store) => {
    const winner: UserRecord = { name: ADMIN_USER, passwordHash: await hashPassword('the-winners-password'), roles: ['admin'], createdAt: '', updatedAt: '' };
    const logs = new LogCapture();
    const { stderr } = await withStderr(() => ensureBootstrapAdmin({ adminUser: ADMIN_USER, adminPassword: undefined, dataDir }, losingTheRace(store.users, winner), createLogger('info', logs) as FastifyBaseLogger));
    assert.ok(!existsSync(join(dataDir, INITIAL_PASSWORD_FILE)), "a password that is not the admin's was saved");
    assert.ok(!stderr.includes('created administrator'), stderr);
    assert.ok(!logs.text.includes('bootstrap administrator created'), logs.text);
    assert.equal((await store.users.get(ADMIN_USER))?.passwordHash, winner.passwordHash, "the winner's admin stays");
  });
});

test('an instance that loses the race to create the administrator from IFLOW_ADMIN_PASSWORD does not log it created, and still makes that password the one', async (t) => {
  const dataDir = tempDataDir(t);
  await withSqliteStore(async (store) => {
    // The other instance was started with another IFLOW_ADMIN_PASSWORD (the same one would verify and be left alone).
    const winner: UserRecord = { name: ADMIN_USER, passwordHash: await hashPassword('the-winners-password'), roles: ['admin'], createdAt: '', updatedAt: '' };
    const logs = new LogCapture();
    await ensureBootstrapAdmin({ adminUser: ADMIN_USER, adminPassword: ADMIN_PASSWORD, dataDir }, losingTheRace(store.users, winner), createLogger('info', logs) as FastifyBaseLogger);
    assert.ok(!logs.text.includes('bootstrap administrator created'), logs.text);
    assert.match(logs.text, /bootstrap administrator reset from IFLOW_ADMIN_PASSWORD/);
    const admin = await store.users.get(ADMIN_USER);
    assert.ok(admin && (await verifyPassword(ADMIN_PASSWORD, admin.passwordHash)), "this instance's password is the admin's");
  });
});
