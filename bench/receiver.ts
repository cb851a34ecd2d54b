/**
 * The stand-in receiver of the benchmark: answers every request 202 with an empty body. Runs in its own process
 * (started by bench/run.ts) so it does not share an event loop with what is measured. Keeps the last request's
 * headers and body so the run can check that iflow and the raw baseline send the same thing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveParent } from './ipc.ts';

let count = 0;
let last: { method: string; url: string; rawHeaders: string[]; chunks: Buffer[] } | undefined;

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    count += 1;
    last = { method: request.method ?? '', url: request.url ?? '', rawHeaders: request.rawHeaders, chunks };
    response.statusCode = 202;
    response.end();
  });
});
// Longer than the clients' keep-alive, so a pooled connection is never closed under a request in flight.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  serveParent(
    `http://127.0.0.1:${port}`,
    {
      count: () => count,
      last: () => last && { method: last.method, url: last.url, rawHeaders: last.rawHeaders, body: Buffer.concat(last.chunks).toString('utf8') },
    },
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
});
