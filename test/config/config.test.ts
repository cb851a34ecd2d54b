import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

test('IFLOW_TRUST_PROXY: off by default; true, or addresses and CIDR ranges', () => {
  assert.equal(loadConfig({}).trustProxy, false);
  assert.equal(loadConfig({ IFLOW_TRUST_PROXY: '' }).trustProxy, false);
  assert.equal(loadConfig({ IFLOW_TRUST_PROXY: 'false' }).trustProxy, false);
  assert.equal(loadConfig({ IFLOW_TRUST_PROXY: 'true' }).trustProxy, true);
  assert.deepEqual(loadConfig({ IFLOW_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,fd00::/8, ::1' }).trustProxy, ['127.0.0.1', '10.0.0.0/8', 'fd00::/8', '::1']);
  assert.deepEqual(loadConfig({ IFLOW_TRUST_PROXY: 'loopback,uniquelocal, linklocal' }).trustProxy, ['loopback', 'uniquelocal', 'linklocal']);
});

test('IFLOW_TRUST_PROXY: anything else is a configuration error naming the entry', () => {
  for (const [value, wrong] of [
    ['yes', 'yes'],
    ['Loopback', 'Loopback'],
    ['2', '2'],
    ['127.0.0.1,proxy.internal', 'proxy.internal'],
    ['10.0.0.0/33', '10.0.0.0/33'],
    ['fd00::/129', 'fd00::/129'],
    ['10.0.0.0/8/1', '10.0.0.0/8/1'],
    ['127.0.0.1,', ''],
  ]) {
    assert.throws(
      () => loadConfig({ IFLOW_TRUST_PROXY: value }),
      (err: Error) => err instanceof ConfigError && err.message.startsWith('IFLOW_TRUST_PROXY:') && err.message.includes(`"${wrong}"`),
      value,
    );
  }
});

test('IFLOW_MPL_RETENTION: 30 days by default, a duration, 0 keeps message logs forever', () => {
  assert.equal(loadConfig({}).messageLogRetentionMs, 30 * 86_400_000);
  assert.equal(loadConfig({ IFLOW_MPL_RETENTION: '7d' }).messageLogRetentionMs, 7 * 86_400_000);
  assert.equal(loadConfig({ IFLOW_MPL_RETENTION: '0' }).messageLogRetentionMs, 0);
  assert.throws(() => loadConfig({ IFLOW_MPL_RETENTION: 'a month' }), (err: Error) => err instanceof ConfigError && err.message.startsWith('IFLOW_MPL_RETENTION: invalid duration "a month"'));
  assert.equal(loadConfig({ IFLOW_MPL_RETENTION: '36500d' }).messageLogRetentionMs, 36_500 * 86_400_000);
  assert.throws(() => loadConfig({ IFLOW_MPL_RETENTION: '200000000d' }), (err: Error) => err instanceof ConfigError && err.message === 'IFLOW_MPL_RETENTION: at most 36500d (use 0 to keep message logs forever)');
});

test("the bootstrap admin's name and password follow the users API's rules; the password is never echoed", () => {
  assert.equal(loadConfig({ IFLOW_ADMIN_PASSWORD: 'eight-ch' }).adminPassword, 'eight-ch');
  assert.throws(
    () => loadConfig({ IFLOW_ADMIN_PASSWORD: 'short7!' }),
    (err: Error) => err instanceof ConfigError && err.message === 'IFLOW_ADMIN_PASSWORD: a password is 8 to 256 characters (this one has 7)',
  );
  assert.throws(() => loadConfig({ IFLOW_ADMIN_PASSWORD: 'x'.repeat(257) }), /IFLOW_ADMIN_PASSWORD: a password is 8 to 256 characters \(this one has 257\)/);
  // Counted as the users API counts: four emoji are four characters (eight UTF-16 units).
  assert.throws(() => loadConfig({ IFLOW_ADMIN_PASSWORD: '😀😀😀😀' }), /\(this one has 4\)/);
  // A secret file's last newline, taken in whole: said so, and the password is not echoed.
  assert.throws(
    () => loadConfig({ IFLOW_ADMIN_PASSWORD: 'from-a-file\n' }),
    (err: Error) => err instanceof ConfigError && /no tab or line break\): it ends in a line break/.test(err.message) && !err.message.includes('from-a-file'),
  );
  assert.throws(() => loadConfig({ IFLOW_ADMIN_PASSWORD: 'tab\there-too' }), /IFLOW_ADMIN_PASSWORD: a password is 8–256 characters, none a control character \(no tab or line break\)$/);
  assert.equal(loadConfig({ IFLOW_ADMIN_PASSWORD: 'ümlaut-ß-ok' }).adminPassword, 'ümlaut-ß-ok');
  assert.throws(() => loadConfig({ IFLOW_ADMIN_USER: 'the admin' }), (err: Error) => err instanceof ConfigError && /^IFLOW_ADMIN_USER: a user name is 1–64 of/.test(err.message));
});

test('a malformed IFLOW_MASTER_KEY stops iflow before it writes anything', () => {
  assert.throws(() => loadConfig({ IFLOW_MASTER_KEY: 'c2hvcnQ=' }), (err: Error) => err instanceof ConfigError && /^IFLOW_MASTER_KEY must be 32 bytes encoded in base64, but it decodes to 5 bytes/.test(err.message));
  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-key-'));
  try {
    const started = spawnSync(process.execPath, ['bin/iflow.js', 'start'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, IFLOW_DATA_DIR: dataDir, IFLOW_MASTER_KEY: 'c2hvcnQ=', IFLOW_ADMIN_PASSWORD: '', PORT: '0', HOST: '127.0.0.1' },
    });
    assert.equal(started.status, 1, started.stdout + started.stderr);
    assert.match(started.stderr, /IFLOW_MASTER_KEY must be 32 bytes/);
    assert.doesNotMatch(started.stderr, /created administrator/, 'no admin password was generated');
    assert.deepEqual(readdirSync(dataDir), [], 'no store, no password file');
    assert.ok(!existsSync(join(dataDir, 'iflow.db')));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('IFLOW_PUBLIC_URL: an http(s) URL with a host; anything else names the problem (a scheme-less host:port parses as a URL too)', () => {
  assert.equal(loadConfig({}).publicUrl, 'http://localhost:8080');
  assert.equal(loadConfig({ PORT: '9000' }).publicUrl, 'http://localhost:9000');
  assert.equal(loadConfig({ IFLOW_PUBLIC_URL: 'https://iflow.example.com/' }).publicUrl, 'https://iflow.example.com');
  assert.equal(loadConfig({ IFLOW_PUBLIC_URL: 'https://example.com/iflow' }).publicUrl, 'https://example.com/iflow');
  assert.equal(loadConfig({ IFLOW_PUBLIC_URL: 'http://[::1]:8080' }).publicUrl, 'http://[::1]:8080');
  // Written loosely, read as the URL parser reads it: the redirect URI is built from what browsers will reach.
  for (const loose of ['http:/example.com', 'http:example.com', 'https:///example.com', ' http://example.com', 'http://example.com?', 'http://example.com#', 'HTTP://EXAMPLE.COM/']) {
    assert.equal(loadConfig({ IFLOW_PUBLIC_URL: loose }).publicUrl, loose.toLowerCase().includes('https') ? 'https://example.com' : 'http://example.com', loose);
  }
  assert.equal(loadConfig({ IFLOW_PUBLIC_URL: 'https://example.com\\iflow' }).publicUrl, 'https://example.com/iflow');
  const cases: [string, RegExp][] = [
    ['localhost:8080', /^IFLOW_PUBLIC_URL must start with http:\/\/ or https:\/\/ \(such as https:\/\/iflow\.example\.com\), got "localhost:8080"$/],
    ['iflow.example.com:443', /must start with http:\/\/ or https:\/\//],
    ['javascript:alert(1)', /must start with http:\/\/ or https:\/\//],
    ['notaurl', /is not an absolute URL/],
    ['https://admin:pw@iflow.example.com', /must not hold a user name or password/],
    ['https://iflow.example.com/?x=1', /must not have a query or fragment/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => loadConfig({ IFLOW_PUBLIC_URL: value }), (err: unknown) => err instanceof ConfigError && message.test(err.message), value);
  }
});

test('LOG_LEVEL is one of pino\'s levels; IFLOW_MPL_FLUSH is from 1 ms to 1 day', () => {
  assert.equal(loadConfig({}).logLevel, 'info');
  assert.equal(loadConfig({ LOG_LEVEL: 'debug' }).logLevel, 'debug');
  assert.throws(() => loadConfig({ LOG_LEVEL: 'verbose' }), /^ConfigError: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/);
  assert.equal(loadConfig({}).messageLogFlushMs, 200);
  assert.equal(loadConfig({ IFLOW_MPL_FLUSH: '1ms' }).messageLogFlushMs, 1);
  assert.throws(() => loadConfig({ IFLOW_MPL_FLUSH: '0' }), /^ConfigError: IFLOW_MPL_FLUSH: at least 1ms/);
  assert.equal(loadConfig({ IFLOW_MPL_FLUSH: '1d' }).messageLogFlushMs, 86_400_000);
  assert.throws(() => loadConfig({ IFLOW_MPL_FLUSH: '30d' }), /^ConfigError: IFLOW_MPL_FLUSH: at most 1d, got "30d"$/);
});

test('IFLOW_PG_STATEMENT_TIMEOUT: 10 s by default, a duration from 100 ms to 1 h; never 0 (unbounded)', () => {
  assert.equal(loadConfig({}).databaseStatementTimeoutMs, 10_000);
  assert.equal(loadConfig({ IFLOW_PG_STATEMENT_TIMEOUT: '30s' }).databaseStatementTimeoutMs, 30_000);
  assert.equal(loadConfig({ IFLOW_PG_STATEMENT_TIMEOUT: '100ms' }).databaseStatementTimeoutMs, 100);
  assert.equal(loadConfig({ IFLOW_PG_STATEMENT_TIMEOUT: '1h' }).databaseStatementTimeoutMs, 3_600_000);
  for (const value of ['0', '99ms', '2h']) {
    assert.throws(() => loadConfig({ IFLOW_PG_STATEMENT_TIMEOUT: value }), new RegExp(`^ConfigError: IFLOW_PG_STATEMENT_TIMEOUT: from 100ms to 1h, got "${value}"$`), value);
  }
  assert.throws(() => loadConfig({ IFLOW_PG_STATEMENT_TIMEOUT: 'soon' }), /^ConfigError: IFLOW_PG_STATEMENT_TIMEOUT: /);
});

test('DATABASE_URL with a malformed percent-escape: a configuration error naming the part, never the password (it was a bare "URI malformed")', () => {
  const cases: [string, string][] = [
    ['postgres://postgres:s3%cretPW@127.0.0.1:1/x', 'password'],
    ['postgres://iflow:p%C3%28w-s3cret@127.0.0.1:1/x', 'password'],
    ['postgres://us%ZZer:pw-s3cret@127.0.0.1:1/x', 'user name'],
    ['postgres://iflow:pw-s3cret@127.0.0.1:1/db%ZZ', 'database name'],
  ];
  for (const [url, part] of cases) {
    assert.throws(
      () => loadConfig({ DATABASE_URL: url }),
      (err: Error) =>
        err instanceof ConfigError &&
        err.message.startsWith(`DATABASE_URL: the ${part} holds a malformed percent-escape`) &&
        err.message.endsWith(`write a "%" of the ${part} itself as %25`) &&
        !/s3%cretPW|s3cret|C3%28/.test(err.message),
      url,
    );
  }
  // Well-formed escapes, query parameters and other forms (a socket path) are the driver's to read.
  for (const url of ['postgres://iflow:p%25w%40rd@db.example:5432/iflow?options=-c%20search_path%3Dx', '/var/run/postgresql iflow']) {
    assert.equal(loadConfig({ DATABASE_URL: url }).databaseUrl, url);
  }
  assert.equal(loadConfig({ DATABASE_URL: '' }).databaseUrl, undefined);

  const dataDir = mkdtempSync(join(tmpdir(), 'iflow-url-'));
  try {
    const started = spawnSync(process.execPath, ['bin/iflow.js', 'start'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, IFLOW_DATA_DIR: dataDir, DATABASE_URL: 'postgres://postgres:s3%cretPW@127.0.0.1:1/x', PORT: '0', HOST: '127.0.0.1' },
    });
    assert.equal(started.status, 1, started.stdout + started.stderr);
    assert.match(started.stderr, /^iflow: cannot start: DATABASE_URL: the password holds a malformed percent-escape/m);
    assert.doesNotMatch(started.stdout + started.stderr, /s3%cretPW|URI malformed/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
