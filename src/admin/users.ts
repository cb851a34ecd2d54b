import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HttpError } from '../errors.ts';
import { requireRole } from '../security/index.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, PASSWORD_PATTERN, PASSWORD_RULE, USER_NAME_PATTERN, USER_NAME_RULE, hashPassword } from '../security/passwords.ts';
import { INITIAL_PASSWORD_FILE } from '../security/bootstrap.ts';
import { ErrorResponse } from './schemas.ts';
import type { UserRecord } from '../store/types.ts';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

const UserName = Type.String({ pattern: USER_NAME_PATTERN, description: USER_NAME_RULE });
const Role = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' });
const Password = Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH, pattern: PASSWORD_PATTERN, description: PASSWORD_RULE });
const UserView = Type.Object({ name: Type.String(), roles: Type.Array(Type.String()), createdAt: Type.String(), updatedAt: Type.String() });
const NameParams = Type.Object({ name: UserName });

function view(user: UserRecord) {
  return { name: user.name, roles: user.roles, createdAt: user.createdAt, updatedAt: user.updatedAt };
}

/** /api/v1/users: the admin manages users, their scrypt-hashed passwords and their roles. */
export const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users } = app.store;
  app.addHook('onRequest', requireRole('admin'));
  // Changes and deletions read, check (the last admin) and write: one at a time, so two at once cannot both pass
  // the check, nor one write over the other's change, also on instances sharing a PostgreSQL store.
  const oneAtATime = <T>(work: () => Promise<T>) => users.exclusively(work);

  /** Is `name` the last user holding admin? Removing its admin role would lock everyone out. */
  async function isLastAdmin(name: string): Promise<boolean> {
    const admins = (await users.list()).filter((u) => u.roles.includes('admin'));
    return admins.length === 1 && admins[0].name === name;
  }

  async function afterChange(name: string, passwordChanged: boolean) {
    app.authenticator.invalidate(name);
    // The generated first password is no longer the admin's: don't keep it on disk.
    if (passwordChanged && name === app.config.adminUser) await rm(join(app.config.dataDir, INITIAL_PASSWORD_FILE), { force: true });
  }

  app.get('/api/v1/users', { schema: { response: { 200: Type.Array(UserView) } } }, async () => (await users.list()).map(view));

  app.get(
    '/api/v1/users/:name',
    { schema: { params: NameParams, response: { 200: UserView, 404: ErrorResponse } } },
    async (request) => {
      const user = await users.get(request.params.name);
      if (!user) throw new HttpError(404, 'NOT_FOUND', `No user "${request.params.name}"`);
      return view(user);
    },
  );

  app.post(
    '/api/v1/users',
    {
      schema: {
        body: Type.Object({ name: UserName, password: Password, roles: Type.Array(Role, { maxItems: 32 }) }, { additionalProperties: false }),
        response: { 201: UserView, 409: ErrorResponse },
      },
    },
    async (request, reply) => {
      const now = new Date().toISOString();
      const { name, password, roles } = request.body;
      const record: UserRecord = { name, passwordHash: await hashPassword(password), roles: [...new Set(roles)], createdAt: now, updatedAt: now };
      if (!(await users.create(record))) throw new HttpError(409, 'CONFLICT', `User "${name}" exists already`);
      await afterChange(name, false);
      request.log.info({ user: name, roles: record.roles, by: request.user?.name }, 'user created');
      return reply.code(201).send(view(record));
    },
  );

  app.put(
    '/api/v1/users/:name',
    {
      schema: {
        params: NameParams,
        body: Type.Object({ password: Type.Optional(Password), roles: Type.Optional(Type.Array(Role, { maxItems: 32 })) }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: UserView, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request) => {
      const { password, roles } = request.body;
      // Hashed before the change takes its turn: scrypt's ~50 ms need not hold up other changes.
      const passwordHash = password ? await hashPassword(password) : undefined;
      const updated = await oneAtATime(async () => {
        const existing = await users.get(request.params.name);
        if (!existing) throw new HttpError(404, 'NOT_FOUND', `No user "${request.params.name}"`);
        if (roles && !roles.includes('admin') && existing.roles.includes('admin') && (await isLastAdmin(existing.name))) {
          throw new HttpError(409, 'LAST_ADMIN', `"${existing.name}" is the last administrator: its admin role cannot be removed`);
        }
        const record: UserRecord = {
          ...existing,
          passwordHash: passwordHash ?? existing.passwordHash,
          roles: roles ? [...new Set(roles)] : existing.roles,
          updatedAt: new Date().toISOString(),
        };
        await users.update(record);
        return record;
      });
      await afterChange(updated.name, password !== undefined);
      // What changed, by name: a field named like a password would be redacted from the line, rightly.
      const changed = [...(password !== undefined ? ['password'] : []), ...(roles ? ['roles'] : [])];
      request.log.info({ user: updated.name, changed, ...(roles ? { roles: updated.roles } : {}), by: request.user?.name }, 'user changed');
      return view(updated);
    },
  );

  app.delete(
    '/api/v1/users/:name',
    { schema: { params: NameParams, response: { 204: Type.Null(), 404: ErrorResponse, 409: ErrorResponse } } },
    async (request, reply) => {
      const { name } = request.params;
      await oneAtATime(async () => {
        if (!(await users.get(name))) throw new HttpError(404, 'NOT_FOUND', `No user "${name}"`);
        if (await isLastAdmin(name)) throw new HttpError(409, 'LAST_ADMIN', `"${name}" is the last administrator and cannot be deleted`);
        await users.delete(name);
      });
      await afterChange(name, false);
      request.log.info({ user: name, by: request.user?.name }, 'user deleted');
      return reply.code(204).send(null);
    },
  );
};
