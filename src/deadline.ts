/** setTimeout's longest delay (~24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What `work` resolves to, or `late` once `ms` have passed first. The work goes on (a query cannot be taken back);
 * a rejection it meets after that is ignored here, so a caller that gave up on it leaves no unhandled rejection.
 * The timer is cleared either way: nothing keeps the process alive.
 */
export async function within<T, L>(work: Promise<T>, ms: number, late: L): Promise<T | L> {
  // Past setTimeout's range (2^31 - 1 ms, Infinity) Node fires at once: no deadline is what such a bound means.
  if (!(ms < MAX_TIMER_MS)) return Number.isNaN(ms) ? late : work;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<L>((resolve) => {
    timer = setTimeout(() => resolve(late), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
  }
}
