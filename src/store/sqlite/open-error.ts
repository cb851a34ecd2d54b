/**
 * SQLite's and the file system's codes for a file or folder this process may not create, open or write: a
 * read-only data dir or volume, another user's files, a path that is not a directory.
 */
const NOT_ACCESSIBLE = /^(SQLITE_CANTOPEN|SQLITE_READONLY|SQLITE_PERM|EACCES$|EPERM$|EROFS$|ENOTDIR$|EEXIST$|EISDIR$)/;

/**
 * `err` from opening `file` (the database, its lock, or the data dir itself) said in words an operator can act on:
 * which file, that it is IFLOW_DATA_DIR's, and which user must be able to write it. SQLite's own words ("unable to
 * open database file", "attempt to write a readonly database") name neither. Other errors are returned as they are.
 */
export function openFailure(err: unknown, file: string, dataDir: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !NOT_ACCESSIBLE.test(code)) return err;
  const uid = process.getuid?.();
  const user = uid === undefined ? 'this user' : `this user (uid ${uid})`;
  const what = file === dataDir ? `in IFLOW_DATA_DIR=${dataDir}` : `${file} (IFLOW_DATA_DIR=${dataDir})`;
  return new Error(`cannot open the SQLite store ${what}: ${(err as Error).message} – is ${dataDir} a directory writable by ${user}?`, { cause: err });
}
