import type { MessageLogRecord } from '../../src/store/types.ts';

let sequence = 0;

/** A complete message processing log record; `overrides` wins. */
export function logRecord(overrides: Partial<MessageLogRecord> = {}): MessageLogRecord {
  sequence += 1;
  const start = overrides.LogStart ?? new Date(Date.UTC(2026, 10, 26, 10, 0, 0) + sequence).toISOString();
  return {
    MessageGuid: `AGk${String(sequence).padStart(8, '0')}-test`,
    CorrelationId: `corr-${sequence}`,
    ApplicationMessageId: null,
    IntegrationFlowName: 'send-mail',
    Status: 'COMPLETED',
    CustomStatus: null,
    LogStart: start,
    LogEnd: new Date(Date.parse(start) + 42).toISOString(),
    Sender: 'client',
    Receiver: 'graph',
    DurationMs: 42,
    Steps: [{ name: 'Send via Graph', kind: 'http', start, durationMs: 40, status: 'COMPLETED' }],
    Error: null,
    ...overrides,
  };
}

/** A logger that keeps what it is given. */
export class RecordingLogger {
  readonly entries: { level: 'info' | 'warn' | 'error'; obj: object; msg: string }[] = [];
  info(obj: object, msg: string) {
    this.entries.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string) {
    this.entries.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string) {
    this.entries.push({ level: 'error', obj, msg });
  }
}
