// PostgreSQL for tests: IFLOW_TEST_DATABASE_URL (default postgres://root@127.0.0.1:5432/test); each user works in
// fresh schemas iflow_test_<random>, dropped afterwards. IFLOW_TEST_SKIP_POSTGRES=1 skips the tests that need it.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { TcpProxy } from './tcp-proxy.ts';
import { describeDatabaseUrl } from '../../src/store/postgres/index.ts';
import { listenerName } from '../../src/store/postgres/notifications.ts';

export const TEST_DATABASE_URL = process.env.IFLOW_TEST_DATABASE_URL || 'postgres://root@127.0.0.1:5432/test';
export const SKIP_POSTGRES = process.env.IFLOW_TEST_SKIP_POSTGRES === '1';
/** A test's `skip` option: skipped with the reason when IFLOW_TEST_SKIP_POSTGRES=1. */
export const SKIP_POSTGRES_OPTION = { skip: SKIP_POSTGRES ? 'IFLOW_TEST_SKIP_POSTGRES=1' : false };

/** The test URL with `search_path` set to `schema` (pg passes the `options` URL parameter on to the server). */
export function urlForSchema(schema: string): string {
  const url = new URL(TEST_DATABASE_URL);
  const existing = url.searchParams.get('options');
  url.searchParams.set('options', `${existing ? `${existing} ` : ''}-c search_path=${schema}`);
  return url.toString();
}

/** An admin connection to the test database that creates throwaway schemas and drops them all at `close()`. */
export class TestSchemas {
  private readonly created: string[] = [];

  private constructor(readonly admin: pg.Client) {}

  /** Connects, or fails with an error that says how to start PostgreSQL or skip these tests. */
  static async connect(): Promise<TestSchemas> {
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5000 });
    try {
      await admin.connect();
    } catch (err) {
      const reason = err instanceof AggregateError ? err.errors.map((e: Error) => e.message).join('; ') : (err as Error).message || String(err);
      throw new Error(
        `PostgreSQL is not reachable at ${describeDatabaseUrl(TEST_DATABASE_URL)} (${reason}). Start it ` +
          '(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), point IFLOW_TEST_DATABASE_URL at one, ' +
          'or set IFLOW_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL tests.',
      );
    }
    return new TestSchemas(admin);
  }

  /** A new empty schema; resolves to its name and a database URL whose search_path is it. */
  async create(): Promise<{ schema: string; url: string }> {
    const schema = `iflow_test_${randomBytes(6).toString('hex')}`;
    await this.admin.query(`CREATE SCHEMA ${schema}`);
    this.created.push(schema);
    return { schema, url: urlForSchema(schema) };
  }

  /** The backends listening for changes on behalf of the stores (instances) of `schema`, by pid: LISTEN done. */
  async listeners(schema: string): Promise<number[]> {
    const { rows } = await this.admin.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle' AND query LIKE 'LISTEN%' ORDER BY pid", [listenerName(schema)]);
    return rows.map((row) => row.pid as number);
  }

  async close(): Promise<void> {
    for (const schema of this.created) await this.admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await this.admin.end();
  }
}

/**
 * A fresh schema reached through a loopback proxy that can be cut (`proxy.cut()`, `proxy.restore()`), as a
 * database outage looks to iflow: resolves to the database URL through the proxy and the proxy. Both, and the
 * schema, are gone when test `t` ends.
 */
export async function schemaBehindProxy(t: TestContext): Promise<{ url: string; proxy: TcpProxy }> {
  const schemas = await TestSchemas.connect();
  t.after(() => schemas.close());
  const { url } = await schemas.create();
  const target = new URL(TEST_DATABASE_URL);
  const proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
  t.after(() => proxy.close());
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return { url: proxied.toString(), proxy };
}
