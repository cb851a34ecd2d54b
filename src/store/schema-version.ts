/**
 * A store whose schema a newer iflow migrated (an upgrade rolled back, an old instance beside new ones) holds
 * tables this one does not know how to write: starting would write records the newer schema may read wrongly,
 * or fail on a column it added. Refused at start, in words, rather than found out later.
 */
export function refuseNewerSchema(applied: ReadonlySet<number>, known: readonly { version: number }[]): void {
  const newest = Math.max(0, ...known.map((migration) => migration.version));
  const unknown = [...applied].filter((version) => version > newest).sort((a, b) => a - b);
  if (unknown.length === 0) return;
  throw new Error(
    `the store's schema is at version ${unknown.at(-1)}, newer than this iflow knows (up to ${newest}): it was migrated by a newer iflow. ` +
      'Run that version (or newer), or restore a backup taken before the upgrade',
  );
}
