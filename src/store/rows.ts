import { MESSAGE_LOG_FIELDS, type CredentialRecord, type MessageLogRecord, type OAuthStateRecord, type UserRecord } from './types.ts';

/** A row as a SQL driver returns it. */
export type Row = Record<string, unknown>;

/** JSON columns come back as text from SQLite and already parsed from PostgreSQL's json type. */
function fromJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/** A users row (any SQL store) → the record. */
export function userFromRow(row: Row): UserRecord {
  return {
    name: row.name as string,
    passwordHash: row.password_hash as string,
    roles: fromJson<string[]>(row.roles),
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

/** A credentials row (any SQL store) → the record (secrets stay encrypted). */
export function credentialFromRow(row: Row): CredentialRecord {
  return {
    name: row.name as string,
    type: row.type as string,
    settings: fromJson<Record<string, unknown>>(row.settings),
    secrets: row.secrets as string,
    state: fromJson<Record<string, unknown>>(row.state),
    version: Number(row.version),
    createdAt: row.created_at as string,
    updatedAt: row.updated_at as string,
  };
}

/** An oauth_states row (any SQL store) → the record (the verifier stays encrypted). */
export function oauthStateFromRow(row: Row): OAuthStateRecord {
  return {
    state: row.state as string,
    credentialName: row.credential_name as string,
    codeVerifier: row.code_verifier as string,
    expiresAt: row.expires_at as string,
  };
}

/** A message_logs row (any SQL store) → the record, in CPI's field names. */
export function messageLogFromRow(row: Row): MessageLogRecord {
  return {
    MessageGuid: row.MessageGuid as string,
    CorrelationId: row.CorrelationId as string,
    ApplicationMessageId: (row.ApplicationMessageId as string | null) ?? null,
    IntegrationFlowName: row.IntegrationFlowName as string,
    Status: row.Status as MessageLogRecord['Status'],
    CustomStatus: (row.CustomStatus as string | null) ?? null,
    LogStart: row.LogStart as string,
    LogEnd: (row.LogEnd as string | null) ?? null,
    Sender: (row.Sender as string | null) ?? null,
    Receiver: (row.Receiver as string | null) ?? null,
    DurationMs: Number(row.DurationMs),
    Steps: fromJson<MessageLogRecord['Steps']>(row.Steps),
    Error: row.Error ? fromJson<MessageLogRecord['Error']>(row.Error) : null,
  };
}

/** The message_logs columns in table order: CPI's fields, then Steps and Error (JSON). */
export const MESSAGE_LOG_COLUMNS = [...MESSAGE_LOG_FIELDS, 'Steps', 'Error'] as const;
/** Where the JSON columns start in MESSAGE_LOG_COLUMNS (and in messageLogValues). */
export const MESSAGE_LOG_JSON_FROM = MESSAGE_LOG_FIELDS.length;

/** A record → its message_logs values in MESSAGE_LOG_COLUMNS order (any SQL store), Steps and Error as JSON text. */
export function messageLogValues(record: MessageLogRecord): unknown[] {
  const values: unknown[] = MESSAGE_LOG_FIELDS.map((field) => record[field] ?? null);
  values.push(record.StepsJson ?? JSON.stringify(record.Steps), record.Error === null ? null : JSON.stringify(record.Error));
  return values;
}
