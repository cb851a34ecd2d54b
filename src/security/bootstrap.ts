import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.ts';
import type { UserRepository } from '../store/types.ts';
import { generatePassword, hashPassword, verifyPassword } from './passwords.ts';

export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

/**
 * Makes sure the bootstrap administrator exists. With IFLOW_ADMIN_PASSWORD that password is the
 * admin's at every start; without it a password is generated once, printed once (to stderr, never
 * through the logger) and saved with mode 0600 so it can be read again.
 */
export async function ensureBootstrapAdmin(
  config: Pick<Config, 'adminUser' | 'adminPassword' | 'dataDir'>,
  users: UserRepository,
  log: FastifyBaseLogger,
): Promise<void> {
  const now = new Date().toISOString();
  let existing = await users.get(config.adminUser);
  if (config.adminPassword) {
    if (!existing) {
      if (await users.create({ name: config.adminUser, passwordHash: await hashPassword(config.adminPassword), roles: ['admin'], createdAt: now, updatedAt: now })) {
        log.info({ user: config.adminUser }, 'bootstrap administrator created from IFLOW_ADMIN_PASSWORD');
        return;
      }
      // Another instance sharing the store created it first: it is checked like one found at start.
      existing = await users.get(config.adminUser);
      if (!existing) return;
    }
    if (!(await verifyPassword(config.adminPassword, existing.passwordHash)) || !existing.roles.includes('admin')) {
      const roles = existing.roles.includes('admin') ? existing.roles : [...existing.roles, 'admin'];
      await users.update({ ...existing, passwordHash: await hashPassword(config.adminPassword), roles, updatedAt: now });
      log.info({ user: config.adminUser }, 'bootstrap administrator reset from IFLOW_ADMIN_PASSWORD');
    }
    return;
  }
  // A deployment that deleted the bootstrap admin (another admin remains) must not get it back.
  if (existing || (await users.list()).some((user) => user.roles.includes('admin'))) return;
  const password = generatePassword();
  // Another instance sharing the store may have created the admin first: its password is the one to use.
  if (!(await users.create({ name: config.adminUser, passwordHash: await hashPassword(password), roles: ['admin'], createdAt: now, updatedAt: now }))) return;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = join(config.dataDir, INITIAL_PASSWORD_FILE);
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  process.stderr.write(
    `\niflow: created administrator "${config.adminUser}" with password ${password}\n` +
      `iflow: it is saved in ${file} (mode 0600) until you change it; set IFLOW_ADMIN_PASSWORD to choose your own.\n\n`,
  );
  log.info({ user: config.adminUser, file }, 'bootstrap administrator created with a generated password');
}
