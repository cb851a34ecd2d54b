import { test } from 'node:test';
import assert from 'node:assert/strict';
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
