/** The channel migration 4's triggers announce changes to users and credentials on: JSON `{ schema, table, name }`. */
export const CHANGES_CHANNEL = 'iflow_changes';

/**
 * Versioned schema migrations for the PostgreSQL store; each runs once, in order. They mirror SQLITE_MIGRATIONS
 * (same tables, same quoted CPI column names) so records round-trip identically on both stores:
 * - text columns use COLLATE "C" so comparisons and ORDER BY are byte-wise, like SQLite's default BINARY
 *   collation, whatever the database's locale is ($filter on LogStart compares ISO strings);
 * - LogStart / LogEnd and the other timestamps stay TEXT in toISOString() form;
 * - Steps, Error, roles, settings and state are `json` (not `jsonb`): validated, yet stored as written, so key
 *   order survives the round trip and "\u0000" escapes are accepted.
 * Tables are created unqualified, in the first schema of the connection's search_path.
 */
export const POSTGRES_MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'users',
    sql: `CREATE TABLE users (
      name TEXT COLLATE "C" PRIMARY KEY,
      password_hash TEXT NOT NULL,
      roles JSON NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );`,
  },
  {
    version: 2,
    name: 'message processing logs',
    sql: `CREATE TABLE message_logs (
      "MessageGuid" TEXT COLLATE "C" PRIMARY KEY,
      "CorrelationId" TEXT COLLATE "C" NOT NULL,
      "ApplicationMessageId" TEXT COLLATE "C",
      "IntegrationFlowName" TEXT COLLATE "C" NOT NULL,
      "Status" TEXT COLLATE "C" NOT NULL,
      "CustomStatus" TEXT COLLATE "C",
      "LogStart" TEXT COLLATE "C" NOT NULL,
      "LogEnd" TEXT COLLATE "C",
      "Sender" TEXT COLLATE "C",
      "Receiver" TEXT COLLATE "C",
      "DurationMs" DOUBLE PRECISION NOT NULL,
      "Steps" JSON NOT NULL,
      "Error" JSON
    );
    CREATE INDEX message_logs_log_start ON message_logs ("LogStart");
    CREATE INDEX message_logs_flow ON message_logs ("IntegrationFlowName", "LogStart");
    CREATE INDEX message_logs_status ON message_logs ("Status", "LogStart");
    CREATE INDEX message_logs_correlation ON message_logs ("CorrelationId");`,
  },
  {
    version: 3,
    name: 'credentials and oauth states',
    sql: `CREATE TABLE credentials (
      name TEXT COLLATE "C" PRIMARY KEY,
      type TEXT NOT NULL,
      settings JSON NOT NULL,
      secrets TEXT NOT NULL,
      state JSON NOT NULL,
      version INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE TABLE oauth_states (
      state TEXT COLLATE "C" PRIMARY KEY,
      credential_name TEXT NOT NULL,
      code_verifier TEXT NOT NULL,
      expires_at TEXT NOT NULL
    );`,
  },
  {
    version: 4,
    name: 'announce changes to users and credentials',
    // Delivered at commit, so a rolled-back change never is. The payload names the schema (installations in other
    // schemas of the database hear the channel too and ignore it), the table and, per row, the name (both names of a
    // renamed row); no name means any row may have changed. Users announce once per statement (migration 5 makes that
    // per row), credentials per row (only that one's cache goes), and per statement when truncated.
    sql: `CREATE FUNCTION iflow_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      changed_names text[];
      changed_name text;
    BEGIN
      IF TG_LEVEL = 'STATEMENT' THEN
        changed_names := ARRAY[NULL::text];
      ELSIF TG_OP = 'INSERT' THEN
        changed_names := ARRAY[NEW.name];
      ELSIF TG_OP = 'DELETE' OR NEW.name = OLD.name THEN
        changed_names := ARRAY[OLD.name];
      ELSE
        changed_names := ARRAY[OLD.name, NEW.name];
      END IF;
      FOREACH changed_name IN ARRAY changed_names LOOP
        PERFORM pg_notify('${CHANGES_CHANNEL}', json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'name', changed_name)::text);
      END LOOP;
      RETURN NULL;
    END $$;
    CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
      FOR EACH STATEMENT EXECUTE FUNCTION iflow_announce_change();
    CREATE TRIGGER credentials_changed AFTER INSERT OR UPDATE OR DELETE ON credentials
      FOR EACH ROW EXECUTE FUNCTION iflow_announce_change();
    CREATE TRIGGER credentials_truncated AFTER TRUNCATE ON credentials
      FOR EACH STATEMENT EXECUTE FUNCTION iflow_announce_change();`,
  },
  {
    version: 5,
    name: 'announce changed users by name',
    // Per row, like credentials: an instance then drops only the changed user's cached logins, where one
    // announcement per statement made every instance drop all of them (and all their clients verify again).
    sql: `DROP TRIGGER users_changed ON users;
    CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
      FOR EACH ROW EXECUTE FUNCTION iflow_announce_change();
    CREATE TRIGGER users_truncated AFTER TRUNCATE ON users
      FOR EACH STATEMENT EXECUTE FUNCTION iflow_announce_change();`,
  },
];
