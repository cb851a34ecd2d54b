import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** The rules for users' names and passwords: the users API's schema and the bootstrap admin's settings share them. */
// Not dots alone: `.` and `..` in a URL path (/api/v1/users/..) are resolved away before they reach iflow.
export const USER_NAME_PATTERN = '^(?!\\.+$)[A-Za-z0-9._@-]{1,64}$';
export const USER_NAME_RULE = '1–64 of A-Z a-z 0-9 . _ @ -, not dots alone';
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;
// No control characters (C0, DEL, C1): none can be typed at a login prompt, a line break is most often a secret file's
// last newline taken in by mistake, and scrypt's HMAC pads short keys with NULs, so "pw" and "pw\0" would hash alike.
export const PASSWORD_PATTERN = '^[^\\u0000-\\u001f\\u007f-\\u009f]*$';
export const PASSWORD_RULE = `${PASSWORD_MIN_LENGTH}–${PASSWORD_MAX_LENGTH} characters, none a control character (no tab or line break)`;

const KEY_LENGTH = 32;
// N=2^15 (OWASP's scrypt floor is 2^17 with r=8,p=1 at ~64 MiB; 2^15 keeps a login near 50 ms on small hosts).
const COST = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$N$r$p$salt$hash` (base64): self-describing, so the cost can grow without breaking old hashes. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), { N: Number(n), r: Number(r), p: Number(p), maxmem: COST.maxmem });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A random password for the bootstrap admin: 24 characters from a URL-safe alphabet. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
