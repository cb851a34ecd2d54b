import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startIflowWithFlows, waitFor } from '../support/iflow.ts';

// A script may set SAP_MessageProcessingLogCustomStatus to any value. One the store cannot bind (SQLite takes no
// boolean or object) once failed its whole batch of message logs, and every batch after it, until a restart.
test('a CustomStatus that is not text is stored as text, and the message logs after it are stored too', async (t) => {
  const iflow = await startIflowWithFlows(t, {
    custom: {
      'flow.yaml': 'sender: { path: /http/custom, allowedHeaders: [X-Kind] }\nsteps:\n  - script: tag.js\n',
      'tag.js': `export default function processData(message) {
  const values = { boolean: true, number: 42, object: { stage: 'shipped' }, text: 'Shipped', none: undefined };
  message.setProperty('SAP_MessageProcessingLogCustomStatus', values[message.getHeader('X-Kind')]);
}
`,
    },
  });
  const expected: Record<string, string | null> = { boolean: 'true', number: '42', object: '{"stage":"shipped"}', text: 'Shipped', none: null };
  const ids: Record<string, string> = {};
  for (const kind of Object.keys(expected)) {
    const response = await fetch(`${iflow.url}/http/custom`, {
      method: 'POST',
      headers: { authorization: iflow.adminAuth, 'content-type': 'application/json', 'x-kind': kind },
      body: '{}',
    });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    ids[kind] = response.headers.get('sap_messageprocessinglogid')!;
  }
  for (const [kind, status] of Object.entries(expected)) {
    const record = await waitFor(() => iflow.app.store.messageLogs.get(ids[kind]), { what: `the ${kind} message's log in the store` });
    assert.equal(record.CustomStatus, status, kind);
  }
  assert.ok(!iflow.logs.text.includes('writing message processing logs failed'), 'no batch failed');
});
