import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { basicAuth, startIflow, startIflowWithFlows } from '../support/iflow.ts';
import { writeFlows } from '../support/flows.ts';

const GOOD = `
parameters:
  GREETING: Hello
sender:
  path: /http/good
steps:
  - set:
      body: "{{GREETING}} \${header.X-Name}"
`;

const BROKEN: Record<string, { yaml: string; files?: Record<string, string>; pointer: string; message: RegExp; file?: string }> = {
  'bad-yaml': { yaml: 'sender: [unclosed', pointer: '', message: /^YAML syntax error \(line 1, column 18\): Flow sequence in block collection must be sufficiently indented and end with a \]$/ },
  'no-sender': { yaml: 'steps:\n  - set: { body: x }\n', pointer: '', message: /missing required property "sender"/ },
  'bad-path': { yaml: 'sender: { path: /api/x }\nsteps:\n  - set: { body: x }\n', pointer: '/sender/path', message: /pattern|under \/http/ },
  'unknown-key': { yaml: 'sender: { path: /http/u, colour: red }\nsteps:\n  - set: { body: x }\n', pointer: '/sender', message: /unknown property "colour"/ },
  'two-kinds': { yaml: 'sender: { path: /http/t }\nsteps:\n  - set: { body: x }\n    mapping: m.jsonata\n', pointer: '/steps/0', message: /exactly one kind, found mapping and set|exactly one kind/ },
  'no-kind': { yaml: 'sender: { path: /http/n }\nsteps:\n  - name: nothing\n', pointer: '/steps/0', message: /needs one of script, mapping, set, http/ },
  'unknown-param': { yaml: 'sender: { path: /http/p }\nsteps:\n  - http: { address: "{{NOPE}}/x" }\n', pointer: '/steps/0/http/address', message: /unknown parameter "NOPE"/ },
  'missing-script': { yaml: 'sender: { path: /http/s }\nsteps:\n  - script: scripts/none.ts\n', pointer: '/steps/0/script', message: /script file not found/ },
  'no-default-export': {
    yaml: 'sender: { path: /http/d }\nsteps:\n  - script: scripts/x.ts\n',
    files: { 'scripts/x.ts': 'export const y = 1;\n' },
    pointer: '',
    file: 'no-default-export/scripts/x.ts',
    message: /export default function processData/,
  },
  'bad-jsonata': { yaml: 'sender: { path: /http/j }\nsteps:\n  - mapping: m.jsonata\n', files: { 'm.jsonata': '{ "a": ' }, pointer: '', file: 'bad-jsonata/m.jsonata', message: /JSONata syntax error/ },
  'bad-expression': { yaml: 'sender: { path: /http/e }\nsteps:\n  - set: { body: "${nope}" }\n', pointer: '/steps/0/set/body', message: /unknown expression/ },
  'same-path': { yaml: 'sender: { path: /http/GOOD }\nsteps:\n  - set: { body: x }\n', pointer: '/sender/path', message: /already served by flow "good"/ },
  'allows-authorization': { yaml: 'sender: { path: /http/a, allowedHeaders: [Authorization] }\nsteps:\n  - set: { body: x }\n', pointer: '/sender/allowedHeaders/0', message: /Authorization and Cookie never/ },
  // The sender's problem is found (and shown) before a step's.
  'authorization-and-step': {
    yaml: 'sender: { path: /http/as, allowedHeaders: [Authorization] }\nsteps:\n  - set: { body: x }\n    timeout: 1s\n',
    pointer: '/sender/allowedHeaders/0',
    message: /Authorization and Cookie never/,
  },
  'missing-schema': { yaml: 'sender: { path: /http/ms, schema: none.json }\nsteps:\n  - set: { body: x }\n', pointer: '/sender/schema', message: /not found/ },
  'bad-duration': { yaml: 'sender: { path: /http/b }\nsteps:\n  - http: { address: "http://127.0.0.1:1/x", timeout: soon }\n', pointer: '/steps/0/http/timeout', message: /pattern|duration/ },
  'unclosed-expression': { yaml: 'sender: { path: /http/ue }\nsteps:\n  - set: { body: "hello ${header.X-Name" }\n', pointer: '/steps/0/set/body', message: /without its closing \}/ },
  'jsonata-parameter': {
    yaml: 'parameters: { SHOP: x }\nsender: { path: /http/jp }\nsteps:\n  - mapping: m.jsonata\n',
    files: { 'm.jsonata': '{ "shop": $parameters.SHOP, "typo": $parameters.SHOPP }\n' },
    pointer: '',
    file: 'jsonata-parameter/m.jsonata',
    message: /^\$parameters\.SHOPP at character \d+ is not a parameter of this flow \(declared: SHOP\)$/,
  },
  // $f is bound, $uppercase and $map are JSONata's own, $i is a lambda's argument: only $sumx is unknown.
  'jsonata-unknown-function': {
    yaml: 'sender: { path: /http/jf }\nsteps:\n  - mapping: m.jsonata\n',
    files: { 'm.jsonata': '( $f := function($x) { $uppercase($x) };\n  { "a": $f(name), "b": $sumx(items.price), "c": $map(items, function($i) { $i.price }) } )\n' },
    pointer: '',
    file: 'jsonata-unknown-function/m.jsonata',
    message: /^\$sumx at character \d+ is not a JSONata function, nor one the mapping binds$/,
  },
  // Every misspelt name of a mapping comes back at once (the rest in otherErrors, checked below).
  'jsonata-several-names': {
    yaml: 'parameters: { SHOP: x }\nsender: { path: /http/jsn }\nsteps:\n  - mapping: m.jsonata\n',
    files: { 'm.jsonata': '{ "a": $parameters.SHOPP, "b": $parameters.REGION, "c": $parameters.SHOPP, "d": $sumx(items) }\n' },
    pointer: '',
    file: 'jsonata-several-names/m.jsonata',
    message: /^\$parameters\.SHOPP at character 24 is not a parameter of this flow \(declared: SHOP\)$/,
  },
  // …at most 20 of them, and how many more.
  'jsonata-many-names': {
    yaml: 'sender: { path: /http/jmn }\nsteps:\n  - mapping: m.jsonata\n',
    files: { 'm.jsonata': `[${Array.from({ length: 25 }, (_, i) => `$parameters.P${i}`).join(', ')}]\n` },
    pointer: '',
    file: 'jsonata-many-names/m.jsonata',
    message: /^\$parameters\.P0 at character \d+ is not a parameter of this flow \(declared: none\)$/,
  },
  'misspelt-parameters': { yaml: 'paramters: { SYSTEM: x }\nsender: { path: /http/mp }\nsteps:\n  - set: { body: "{{SYSTEM}}" }\n', pointer: '', message: /^unknown property "paramters"$/ },
  'bad-header-name': { yaml: 'sender: { path: /http/bh }\nsteps:\n  - set: { headers: { X Spaced: a } }\n', pointer: '/steps/0/set/headers', message: /unknown property "X Spaced" \(header names: / },
  'http-step-timeout': { yaml: 'sender: { path: /http/ht }\nsteps:\n  - http: { address: "http://127.0.0.1:1/x" }\n    timeout: 1s\n', pointer: '/steps/0/timeout', message: /applies to script steps only: an http step takes http\.timeout/ },
  // A union branch that fits but holds a wrong value: that value is the problem, not the union.
  'bad-auth-name': {
    yaml: 'sender: { path: /http/ba }\nsteps:\n  - http: { address: "http://127.0.0.1:1/x", auth: { basic: "bad name!" } }\n',
    pointer: '/steps/0/http/auth/basic',
    message: /must match pattern/,
  },
  'too-many-problems': {
    yaml: `sender: { path: /http/many }\nsteps:\n${Array.from({ length: 23 }, () => '  - set: {}\n').join('')}`,
    pointer: '/steps/0/set',
    message: /must NOT have fewer than 1 properties/,
  },
  // The cap counts an unknown top-level key with the schema problems.
  'many-and-a-typo': {
    yaml: `colour: red\nsender: { path: /http/mat }\nsteps:\n${Array.from({ length: 20 }, () => '  - set: {}\n').join('')}`,
    pointer: '',
    message: /^unknown property "colour"$/,
  },
  // Several schema problems: the API shows the first (in the schema's order); iflow check prints each (below).
  'several-problems': {
    yaml: 'sender: { path: /api/x, method: PUSH, bodyLimit: lots }\nsteps:\n  - http: { address: "http://127.0.0.1:1/x", timeout: soon, auth: { bearer: x } }\n',
    pointer: '/sender/path',
    message: /under \/http\//,
  },
  'schema-not-json': {
    yaml: 'sender: { path: /http/sj, schema: s.json }\nsteps:\n  - set: { body: x }\n',
    files: { 's.json': '{\n  "type": "object",\n  properties: {}\n}\n' },
    pointer: '',
    file: 'schema-not-json/s.json',
    message: /^JSON syntax error \(line 3, column 3\): Expected double-quoted property name$/,
  },
  // V8 gives no position here and quotes the text over several lines: one line, without the quote.
  'schema-trailing-comma': {
    yaml: 'sender: { path: /http/st, schema: s.json }\nsteps:\n  - set: { body: x }\n',
    files: { 's.json': '{ "type": "object",\n  "required": ["a",]\n}\n' },
    pointer: '',
    file: 'schema-trailing-comma/s.json',
    message: /^JSON syntax error: Unexpected token '\]'$/,
  },
  'schema-two-documents': {
    yaml: 'sender: { path: /http/s2, schema: s.json }\nsteps:\n  - set: { body: x }\n',
    files: { 's.json': '{ "type": "object" }\n{}\n' },
    pointer: '',
    file: 'schema-two-documents/s.json',
    message: /^JSON syntax error \(line 2, column 1\): Unexpected non-whitespace character after the JSON$/,
  },
  'schema-invalid': {
    yaml: 'sender: { path: /http/si, schema: s.json }\nsteps:\n  - set: { body: x }\n',
    files: { 's.json': '{ "type": "objekt" }\n' },
    pointer: '',
    file: 'schema-invalid/s.json',
    message: /^invalid JSON Schema: schema is invalid: data\/type must be equal to one of the allowed values/,
  },
  // An unknown top-level key is reported with the file's other problems, not alone.
  'typo-and-schema': { yaml: 'colour: red\nsender: { path: /api/ts }\nsteps:\n  - set: { body: x }\n', pointer: '', message: /^unknown property "colour"$/ },
  'two-typos': { yaml: 'sender: { path: /http/tt, rolle: a, allowedHeader: [X] }\nsteps:\n  - set: { body: x }\n', pointer: '/sender', message: /^unknown property "rolle"$/ },
};
/** What iflow check prints for 'several-problems', one line each, in the schema's order. */
const SEVERAL_PROBLEMS = [
  /ERROR\s+several-problems\s+several-problems\/flow\.yaml at \/sender\/path: must match pattern .* \(endpoint path, always under \/http\/\)/,
  /^\s+several-problems\/flow\.yaml at \/sender\/method: must be one of "POST", "PUT", "PATCH", "GET", "DELETE"$/,
  /^\s+several-problems\/flow\.yaml at \/sender\/bodyLimit: must be a size: "10MB", "512KB", or a number of bytes$/,
  /^\s+several-problems\/flow\.yaml at \/steps\/0\/http\/auth: must have exactly one of "oauth2AuthorizationCode", "oauth2ClientCredentials", "basic", and nothing else$/,
  /^\s+several-problems\/flow\.yaml at \/steps\/0\/http\/timeout: must be a duration: "500ms", "30s", "2m", or a number of milliseconds$/,
];

function brokenFlows() {
  const flows: Record<string, Record<string, string>> = { good: { 'flow.yaml': GOOD } };
  for (const [name, spec] of Object.entries(BROKEN)) flows[name] = { 'flow.yaml': spec.yaml, ...spec.files };
  return flows;
}

test('each broken flow is reported with its file, pointer and reason while the good flow serves', async (t) => {
  const iflow = await startIflowWithFlows(t, brokenFlows());

  const list = (await (await fetch(`${iflow.url}/api/v1/flows`, { headers: { authorization: iflow.adminAuth } })).json()) as {
    id: string;
    status: string;
    endpoint?: string;
    error?: { file: string; pointer: string; message: string };
  }[];
  const byId = new Map(list.map((f) => [f.id, f]));
  assert.equal(byId.get('good')?.status, 'deployed');
  assert.equal(byId.get('good')?.endpoint, '/http/good');
  for (const [name, spec] of Object.entries(BROKEN)) {
    const flow = byId.get(name);
    assert.ok(flow, `flow ${name} is listed`);
    assert.equal(flow.status, 'error', `${name} is not deployed`);
    assert.equal(flow.error?.file, spec.file ?? `${name}/flow.yaml`, `${name}: file`);
    assert.equal(flow.error?.pointer, spec.pointer, `${name}: pointer (${flow.error?.message})`);
    assert.match(flow.error!.message, spec.message, `${name}: message`);
  }

  // A broken flow whose sender is valid shows which endpoint is down; one whose sender is not, none.
  for (const name of ['two-kinds', 'missing-script', 'jsonata-parameter', 'no-kind']) {
    const flow = byId.get(name) as { endpoint?: string; method?: string; role?: string };
    assert.deepEqual([flow.endpoint, flow.method, flow.role], [`/http/${BROKEN[name].yaml.match(/path: \/http\/(\w+)/)![1]}`, 'POST', 'ESBMessaging.send'], name);
  }
  for (const name of ['bad-yaml', 'no-sender', 'bad-path', 'unknown-key', 'several-problems', 'allows-authorization', 'same-path', 'authorization-and-step', 'missing-schema']) {
    const flow = byId.get(name) as { endpoint?: string; method?: string; role?: string };
    assert.deepEqual([flow.endpoint, flow.method, flow.role], [undefined, undefined, undefined], name);
  }

  // The good flow serves; a broken flow's path is a 404; the deploy errors were logged.
  const good = await fetch(`${iflow.url}/http/good`, { method: 'POST', headers: { authorization: iflow.adminAuth, 'x-name': 'ignored' } });
  assert.equal(good.status, 200);
  assert.equal(await good.text(), 'Hello ');
  const broken = await fetch(`${iflow.url}/http/u`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  assert.equal(broken.status, 404);
  assert.ok(iflow.logs.records().some((r) => r.msg === 'flow not deployed' && r.flow === 'bad-yaml'));
  const several = iflow.logs.records().find((r) => r.msg === 'flow not deployed' && r.flow === 'several-problems') as { error: { pointer: string }; otherErrors: { pointer: string }[] } | undefined;
  assert.deepEqual([several?.error.pointer, ...(several?.otherErrors ?? []).map((e) => e.pointer)], ['/sender/path', '/sender/method', '/sender/bodyLimit', '/steps/0/http/auth', '/steps/0/http/timeout']);
  assert.ok(!('otherErrors' in byId.get('several-problems')!), 'the API shows the first problem only, as its contract says');
  const typo = iflow.logs.records().find((r) => r.msg === 'flow not deployed' && r.flow === 'typo-and-schema') as { otherErrors?: { pointer: string }[] } | undefined;
  assert.deepEqual(typo?.otherErrors?.map((e) => e.pointer), ['/sender/path'], 'the schema problem comes with the unknown key');
  const names = iflow.logs.records().find((r) => r.msg === 'flow not deployed' && r.flow === 'jsonata-several-names') as { otherErrors?: { message: string }[] } | undefined;
  assert.deepEqual(
    names?.otherErrors?.map((e) => e.message),
    ['$parameters.REGION at character 49 is not a parameter of this flow (declared: SHOP)', '$sumx at character 85 is not a JSONata function, nor one the mapping binds'],
    'each unknown name once, after the first',
  );
  const many = iflow.logs.records().find((r) => r.msg === 'flow not deployed' && r.flow === 'jsonata-many-names') as { otherErrors: { message: string }[] } | undefined;
  assert.equal(many?.otherErrors.length, 20);
  assert.equal(many?.otherErrors.at(-1)?.message, 'and 5 more problems not shown');
  const ready = await fetch(`${iflow.url}/ready`);
  assert.equal(ready.status, 200, 'ready even though some flows failed');

  const one = await fetch(`${iflow.url}/api/v1/flows/good`, { headers: { authorization: iflow.adminAuth } });
  assert.equal(one.status, 200);
  assert.equal(((await one.json()) as { id: string }).id, 'good');
  assert.equal((await fetch(`${iflow.url}/api/v1/flows/nope`, { headers: { authorization: iflow.adminAuth } })).status, 404);
  assert.equal((await fetch(`${iflow.url}/api/v1/flows`)).status, 401);
});

test('IFLOW_PARAM_<NAME> overrides a parameter default', async (t) => {
  const iflow = await startIflowWithFlows(t, { good: { 'flow.yaml': GOOD } }, { env: { IFLOW_PARAM_GREETING: 'Servus' } });
  const response = await fetch(`${iflow.url}/http/good`, { method: 'POST', headers: { authorization: iflow.adminAuth } });
  assert.equal(await response.text(), 'Servus ');
});

function runCheck(dir: string) {
  return spawnSync(process.execPath, ['bin/iflow.js', 'check', dir], { encoding: 'utf8', env: { ...process.env, IFLOW_PARAM_GREETING: 'Hi' } });
}

test('iflow check prints each broken flow and exits non-zero; 0 when all are valid', () => {
  const broken = writeFlows(brokenFlows());
  const good = writeFlows({ good: { 'flow.yaml': GOOD } });
  try {
    const bad = runCheck(broken.dir);
    assert.equal(bad.status, 1, bad.stderr);
    for (const name of Object.keys(BROKEN)) assert.match(bad.stdout, new RegExp(`ERROR\\s+${name}\\s`), `check reports ${name}`);
    const lines = bad.stdout.split('\n');
    const at = lines.findIndex((line) => SEVERAL_PROBLEMS[0].test(line));
    assert.ok(at >= 0, bad.stdout);
    SEVERAL_PROBLEMS.forEach((expected, i) => assert.match(lines[at + i], expected));
    const typos = lines.findIndex((line) => /ERROR\s+two-typos\s/.test(line));
    assert.match(lines[typos + 1], /^\s+two-typos\/flow\.yaml at \/sender: unknown property "allowedHeader"$/, 'two problems at one place are both shown');
    const many = lines.findIndex((line) => /ERROR\s+too-many-problems\s/.test(line));
    assert.match(lines[many + 19], /at \/steps\/19\/set: /, 'twenty problems are shown');
    assert.match(lines[many + 20], /^\s+too-many-problems\/flow\.yaml: and 3 more problems not shown$/);
    const typoFirst = lines.findIndex((line) => /ERROR\s+many-and-a-typo\s/.test(line));
    assert.match(lines[typoFirst + 20], /^\s+many-and-a-typo\/flow\.yaml: and 1 more problems not shown$/);
    assert.match(bad.stdout, /ok\s+good/);
    assert.match(bad.stdout, new RegExp(`${Object.keys(BROKEN).length} of ${Object.keys(BROKEN).length + 1} flows invalid`));
    const ok = runCheck(good.dir);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ok\s+good\s+POST \/http\/good\s+\(1 step\)$/m);
    assert.match(ok.stdout, /^1 flow valid$/m);
  } finally {
    broken.remove();
    good.remove();
  }
});

test('a mapping that binds $parameters itself is not checked against the flow parameters', (t) => {
  const flows = writeFlows({
    rebound: {
      'flow.yaml': 'sender: { path: /http/rebound }\nsteps:\n  - mapping: a.jsonata\n  - mapping: b.jsonata\n',
      'a.jsonata': '($parameters := {"extra": 1}; {"a": $parameters.extra})\n',
      'b.jsonata': '$map([1], function($v, $i, $parameters) { $parameters.foo })\n',
    },
  });
  t.after(() => flows.remove());
  const result = runCheck(flows.dir);
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

test('iflow check says when the flows folder does not exist, holds no flow, or is a file', (t) => {
  const missing = runCheck(join(tmpdir(), 'iflow-no-such-flows-folder'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /the flows folder .*iflow-no-such-flows-folder does not exist/);
  const empty = mkdtempSync(join(tmpdir(), 'iflow-empty-flows-'));
  t.after(() => rmSync(empty, { recursive: true, force: true }));
  const none = runCheck(empty);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no flows found in .* \(one folder per flow, each holding a flow\.yaml\)/);
  // A flow.yaml given instead of the folder: said so, without a stack trace.
  const flows = writeFlows({ good: { 'flow.yaml': GOOD } });
  t.after(() => flows.remove());
  const file = runCheck(join(flows.dir, 'good', 'flow.yaml'));
  assert.equal(file.status, 1);
  assert.equal(file.stderr.trim(), `iflow check: ${join(flows.dir, 'good', 'flow.yaml')} is a file, not a folder: give the folder that holds one folder per flow (each with its flow.yaml)`);
});

test('the sample flows in flows/ pass iflow check', () => {
  const result = runCheck('flows');
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

test("iflow check loads TypeScript scripts from a flows folder of the user's own, outside any package (no package.json)", (t) => {
  // A copy of the samples where a user keeps flows: no package.json above it, so Node treats its .ts as CommonJS.
  const dir = mkdtempSync(join(tmpdir(), 'iflow-own-flows-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync('flows', dir, { recursive: true });
  assert.ok(!existsSync(join(dir, 'package.json')));
  const result = runCheck(dir);
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /ok\s+send-mail\s/);

  // Top-level await needs an ES module: the error says how to get one.
  writeFileSync(join(dir, 'hello', 'wait.ts'), 'const ready = await Promise.resolve(true);\nexport default function processData() { return ready ? undefined : null; }\n');
  writeFileSync(join(dir, 'hello', 'flow.yaml'), 'sender: { path: /http/wait }\nsteps:\n  - script: wait.ts\n');
  const esmOnly = runCheck(dir);
  assert.equal(esmOnly.status, 1);
  assert.match(esmOnly.stdout, /ERROR\s+hello\s+hello\/wait\.ts: script does not load: [^]*Top-level await[^]*add a package\.json of \{"type": "module"\} to the flows folder, or name the script \.mts/);
});

test('basicAuth helper builds a Basic header', () => {
  assert.equal(basicAuth('a', 'b'), `Basic ${Buffer.from('a:b').toString('base64')}`);
});

test("iflow check lists every step's problem and the sender schema's in one run", (t) => {
  const flows = writeFlows({
    several: {
      'flow.yaml': [
        'sender: { path: /http/several, schema: missing.json }',
        'steps:',
        '  - set: { headers: { X-A: "${propertyy.x}" } }',
        '  - set: { headers: { X-B: "${date:now:yyyy-QQ}" } }',
        '  - script: nowhere.mjs',
        '  - http: { address: "ftp://h.example/x" }',
        '',
      ].join('\n'),
    },
  });
  t.after(() => flows.remove());
  const checked = runCheck(flows.dir);
  assert.equal(checked.status, 1);
  const lines = checked.stdout.split('\n').filter((line) => line.trim());
  assert.deepEqual(
    lines.map((line) => line.trim().replace(/^ERROR\s+several\s+/, '').replace(/^several\/flow\.yaml at /, '').split(':')[0]),
    ['/steps/0/set/headers/X-A', '/steps/1/set/headers/X-B', '/steps/2/script', '/steps/3/http/address', '/sender/schema', '1 of 1 flow invalid'],
    checked.stdout,
  );
});

test('flows sharing a schema file with an $id all deploy, whatever the flows before them', (t) => {
  const schema = JSON.stringify({ $id: 'https://example.com/order.json', type: 'object', required: ['id'] });
  const flow = (path: string, extra = '') => `sender: { path: ${path}, schema: ../_shared/order.json }\nsteps:\n  - set: { body: ok }\n${extra}`;
  const flows = writeFlows({
    _shared: { 'order.json': schema },
    'a-broken': { 'flow.yaml': flow('/http/broken', '  - script: missing.mjs\n') },
    'b-one': { 'flow.yaml': flow('/http/one') },
    'c-two': { 'flow.yaml': flow('/http/two') },
  });
  t.after(() => flows.remove());
  const checked = runCheck(flows.dir);
  const lines = checked.stdout.split('\n').filter(Boolean);
  assert.deepEqual(lines.map((line) => line.split(/\s+/).slice(0, 2).join(' ')), ['ERROR a-broken', 'ok b-one', 'ok c-two', '1 of'], checked.stdout);

  // A missing shared schema: each flow's error names its own flow file.
  const missing = writeFlows({ orders: { 'flow.yaml': flow('/http/orders') }, invoices: { 'flow.yaml': flow('/http/invoices') } });
  t.after(() => missing.remove());
  const output = runCheck(missing.dir).stdout;
  assert.match(output, /^ERROR {2}invoices {2}invoices\/flow\.yaml at \/sender\/schema: schema file not found: \.\.\/_shared\/order\.json$/m);
  assert.match(output, /^ERROR {2}orders {2}orders\/flow\.yaml at \/sender\/schema: schema file not found/m);
});

test('a script reading context.parameters.NAME the flow does not declare deploys with a warning; comments and strings are not read', async (t) => {
  const script = [
    '// Was: context.parameters.OLD_NAME',
    '/** Reads context.parameters.REGION, see the docs. */',
    'export default function processData(message, context) {',
    '  if (!context.parameters.SHOP) throw new Error("set context.parameters.SHOP_URL");',
    '  message.setBody(`${context.parameters.SHOP}/${context.parameters.SHOPP}`);',
    "  message.setHeader('X-Region', context.parameters['REGION'] ?? context.parameters[\"SHOP\"]);",
    '  return context.parameters.SHOPP ?? context.parameters.toString();',
    '}',
  ].join('\n');
  const many = Array.from({ length: 15 }, (_, i) => `  context.parameters.P${i};`).join('\n');
  // The entry point may call its context something else.
  const renamed = [
    'export default async function processData(message: unknown, ctx: { parameters: Record<string, string> }) {',
    '  return ctx.parameters.SHOP + ctx.parameters.API_KEY + ctx.parameters.API_KEY;',
    '}',
  ].join('\n');
  // Whatever the first parameter's type or default holds, and a $ in the context's name.
  const generic = [
    'type Msg<A, B> = { a: A; b: B };',
    'export default (message: Msg<string, number> = { a: "", b: 0 }, $ctx: { parameters: Record<string, string> }) => $ctx.parameters.TOKEN;',
  ].join('\n');
  const flows = writeFlows({
    renamed: { 'flow.yaml': 'parameters: { SHOP: berlin }\nsender: { path: /http/renamed }\nsteps:\n  - script: s.ts\n', 's.ts': `${renamed}\n` },
    generic: { 'flow.yaml': 'sender: { path: /http/generic }\nsteps:\n  - script: s.ts\n', 's.ts': `${generic}\n` },
    warned: { 'flow.yaml': 'parameters: { SHOP: berlin }\nsender: { path: /http/warned }\nsteps:\n  - script: s.mjs\n', 's.mjs': `${script}\n` },
    many: { 'flow.yaml': 'sender: { path: /http/many }\nsteps:\n  - script: s.mjs\n', 's.mjs': `export default function processData(message, context) {\n${many}\n}\n` },
  });
  t.after(() => flows.remove());
  const checked = runCheck(flows.dir);
  assert.equal(checked.status, 0, 'a warning is not an error');
  const output = checked.stdout.split('\n').filter(Boolean);
  assert.equal(output.filter((line) => line.startsWith('WARN   many ')).length, 10, 'at most ten per script');
  assert.equal(output.at(-1), '4 flows valid (4 with warnings)');
  assert.deepEqual(
    output.filter((line) => /\bgeneric\b/.test(line)),
    ['ok     generic  POST /http/generic  (1 step)', 'WARN   generic  generic/s.ts: $ctx.parameters.TOKEN at line 2 is not a parameter of this flow (declared: none)'],
  );
  assert.deepEqual(
    output.filter((line) => /\brenamed\b/.test(line)),
    ['ok     renamed  POST /http/renamed  (1 step)', 'WARN   renamed  renamed/s.ts: ctx.parameters.API_KEY at line 2 is not a parameter of this flow (declared: SHOP)'],
  );
  assert.deepEqual(
    output.filter((line) => /\bwarned\b/.test(line)),
    [
      'ok     warned  POST /http/warned  (1 step)',
      'WARN   warned  warned/s.mjs: context.parameters.SHOPP at line 5 is not a parameter of this flow (declared: SHOP)',
      'WARN   warned  warned/s.mjs: context.parameters.REGION at line 6 is not a parameter of this flow (declared: SHOP)',
    ],
  );
  const iflow = await startIflow({ flowsDir: flows.dir });
  t.after(() => iflow.close());
  const line = iflow.logs.records().find((r) => r.flow === 'warned');
  assert.equal(line?.msg, 'flow deployed with warnings');
  assert.equal(line?.level, 40);
  assert.deepEqual(
    (line?.warnings as { file: string; message: string }[]).map((w) => `${w.file}: ${w.message}`),
    ['warned/s.mjs: context.parameters.SHOPP at line 5 is not a parameter of this flow (declared: SHOP)', 'warned/s.mjs: context.parameters.REGION at line 6 is not a parameter of this flow (declared: SHOP)'],
  );
  const listed = (await (await fetch(`${iflow.url}/api/v1/flows/warned`, { headers: { authorization: iflow.adminAuth } })).json()) as Record<string, unknown>;
  assert.equal(listed.status, 'deployed');
  // The API and the admin UI show them too.
  assert.deepEqual(
    (listed.warnings as { pointer: string; message: string }[]).map((w) => w.message),
    ['context.parameters.SHOPP at line 5 is not a parameter of this flow (declared: SHOP)', 'context.parameters.REGION at line 6 is not a parameter of this flow (declared: SHOP)'],
  );
  const page = await (await fetch(`${iflow.url}/`, { headers: { authorization: iflow.adminAuth } })).text();
  assert.match(page, /warning: warned\/s\.mjs: context\.parameters\.SHOPP at line 5 is not a parameter of this flow/);
});
