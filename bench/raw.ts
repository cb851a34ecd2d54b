/**
 * The raw baseline: what a hand-written passthrough costs. Plain Fastify 5 (no logger), Basic auth checked by
 * comparing the header with the expected string, the same mapOrder() iflow's script runs, and a keep-alive undici
 * Pool to the receiver; it answers with the receiver's status. Started by bench/run.ts in its own process.
 */
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { serveParent } from './ipc.ts';
import { mapOrder, type Order } from './mapping.ts';

const receiver = new URL(process.env.BENCH_RECEIVER_URL ?? '');
const expectedAuthorization = process.env.BENCH_AUTHORIZATION ?? '';
if (!expectedAuthorization) throw new Error('BENCH_AUTHORIZATION is not set');

// iflow's dispatcher: an undici Agent with keepAliveTimeout 30 s and up to 256 connections per origin.
const pool = new Pool(receiver.origin, { connections: 256, keepAliveTimeout: 30_000 });
const path = receiver.pathname + receiver.search;

const app = Fastify({ logger: false });
app.post('/http/bench', async (request, reply) => {
  if (request.headers.authorization !== expectedAuthorization) {
    return reply.code(401).header('WWW-Authenticate', 'Basic realm="raw"').send({ error: 'unauthorized' });
  }
  const mapped = mapOrder(request.body as Order);
  const response = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(mapped) });
  const body = Buffer.from(await response.body.arrayBuffer());
  reply.code(response.statusCode);
  const type = response.headers['content-type'];
  if (typeof type === 'string') reply.header('content-type', type);
  return reply.send(body);
});

await app.listen({ port: 0, host: '127.0.0.1' });
const { port } = app.server.address() as AddressInfo;
serveParent(`http://127.0.0.1:${port}`, {}, async () => {
  await app.close();
  await pool.close();
});
