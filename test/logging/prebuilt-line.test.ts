import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogCapture } from '../support/iflow.ts';
import { createLogger, writePrebuiltLine } from '../../src/logging/index.ts';

const fields = { messageId: '0194f3a2-7c1e-7b3a-9f00-123456789abc', flow: 'orders "eu"', durationMs: 3.25, steps: [{ name: 'Map\norder', durationMs: 0.5 }] };
const fieldsJson = Object.entries(fields)
  .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`)
  .join(',');

test('writePrebuiltLine writes the line logger.info(fields, msg) writes, bindings included', () => {
  const capture = new LogCapture();
  const logger = createLogger('info', capture).child({ component: 'sender' });
  logger.info(fields, 'message completed');
  writePrebuiltLine(logger, 'info', fieldsJson, 'message completed');
  assert.equal(capture.lines.length, 2);
  const [byPino, byHand] = capture.records();
  assert.equal(typeof byHand.time, 'number');
  assert.deepEqual({ ...byHand, time: 0 }, { ...byPino, time: 0 });
  assert.deepEqual(Object.keys(byHand), Object.keys(byPino), 'same fields in the same order');
  assert.equal(byHand.level, 30);
  assert.equal(byHand.component, 'sender');
});

test('writePrebuiltLine honours the level', () => {
  const capture = new LogCapture();
  const logger = createLogger('warn', capture);
  writePrebuiltLine(logger, 'info', fieldsJson, 'message completed');
  writePrebuiltLine(logger, 'warn', fieldsJson, 'message failed');
  assert.deepEqual(
    capture.records().map((line) => [line.level, line.msg]),
    [[40, 'message failed']],
  );
});
