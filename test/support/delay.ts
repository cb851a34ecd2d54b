import type { FastifyReply } from 'fastify';

/** Resolves after `ms`, or earlier when `signal` aborts (so close() and client timeouts never hang). */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Waits `ms` before a stand-in answers, unless the client gives up or the stand-in closes first. */
export async function delayUnlessGone(reply: FastifyReply, ms: number, closing: AbortSignal): Promise<void> {
  const gone = new AbortController();
  const onGone = () => gone.abort();
  reply.raw.once('close', onGone);
  closing.addEventListener('abort', onGone, { once: true });
  await delay(ms, gone.signal);
  reply.raw.off('close', onGone);
  closing.removeEventListener('abort', onGone);
}
