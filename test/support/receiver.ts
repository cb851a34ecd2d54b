import Fastify from 'fastify';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Header names and values as they came over the wire (duplicates visible). */
  rawHeaders?: string[];
  body: string;
}

export interface StandInReply {
  status?: number;
  headers?: Record<string, string | undefined>;
  body?: string | object;
  /** Never answer (for timeout tests); the request is released when the receiver closes. */
  hang?: boolean;
}

/** A stand-in HTTP receiver on loopback: records every request and answers what the test says. */
export async function startReceiver(reply: StandInReply | ((request: ReceivedRequest) => StandInReply) = { status: 200, body: { ok: true } }) {
  const received: ReceivedRequest[] = [];
  const app = Fastify({ forceCloseConnections: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const hanging = new Set<() => void>();
  app.all('/*', async (request, res) => {
    const entry: ReceivedRequest = { method: request.method, url: request.url, headers: request.headers, rawHeaders: request.raw.rawHeaders, body: typeof request.body === 'string' ? request.body : '' };
    received.push(entry);
    const answer = typeof reply === 'function' ? reply(entry) : reply;
    if (answer.hang) {
      await new Promise<void>((resolve) => hanging.add(resolve));
      return res.code(504).send();
    }
    res.code(answer.status ?? 200);
    for (const [name, value] of Object.entries(answer.headers ?? {})) if (value !== undefined) res.header(name, value);
    return res.send(answer.body ?? '');
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    received,
    async close() {
      for (const release of hanging) release();
      await app.close();
    },
  };
}
