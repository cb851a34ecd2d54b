import type { MessageLogRecord } from './types.ts';

/** A row as a SQL driver returns it. */
export type Row = Record<string, unknown>;

/** JSON columns come back as text from SQLite and already parsed from PostgreSQL's json type. */
function fromJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
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
