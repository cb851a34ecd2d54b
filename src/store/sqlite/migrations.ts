/** Versioned schema migrations for the SQLite store; each runs once, in order, in a transaction. */
export const SQLITE_MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'users',
    sql: `CREATE TABLE users (
      name TEXT PRIMARY KEY,
      password_hash TEXT NOT NULL,
      roles TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );`,
  },
  {
    version: 2,
    name: 'message processing logs',
    sql: `CREATE TABLE message_logs (
      "MessageGuid" TEXT PRIMARY KEY,
      "CorrelationId" TEXT NOT NULL,
      "ApplicationMessageId" TEXT,
      "IntegrationFlowName" TEXT NOT NULL,
      "Status" TEXT NOT NULL,
      "CustomStatus" TEXT,
      "LogStart" TEXT NOT NULL,
      "LogEnd" TEXT,
      "Sender" TEXT,
      "Receiver" TEXT,
      "DurationMs" REAL NOT NULL,
      "Steps" TEXT NOT NULL,
      "Error" TEXT
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
      name TEXT PRIMARY KEY,
      type TEXT NOT NULL,
      settings TEXT NOT NULL,
      secrets TEXT NOT NULL,
      state TEXT NOT NULL,
      version INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE TABLE oauth_states (
      state TEXT PRIMARY KEY,
      credential_name TEXT NOT NULL,
      code_verifier TEXT NOT NULL,
      expires_at TEXT NOT NULL
    );`,
  },
];
