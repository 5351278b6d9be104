// The Redis store's directory of users: a hash per user, and two sorted sets that page it,
// by id (lexically) and by revision.
import { z } from 'zod';
import { StorageError, type RelayStore, type StoredUser } from '../mailbox/store.ts';
import type { Redis } from './commands.ts';
import type { StoreKeys } from './context.ts';
import { Int, Strings } from './members.ts';
import { CHANGED_USERS, SAVE_USER, SET_LAST_SEEN } from './scripts.ts';

const USER_FIELDS = ['id', 'name', 'idKey', 'kaKey', 'kaSig', 'lastSeen', 'rev'] as const;
const UserSchema = z.object({
  id: z.string(),
  name: z.string(),
  idKey: z.string(),
  kaKey: z.string(),
  kaSig: z.string(),
  lastSeen: z.coerce.number().int(),
  rev: z.coerce.number(),
});
const Fields = z.array(z.string().nullable());

export type Directory = Pick<RelayStore, 'saveUser' | 'setLastSeen' | 'getUsers' | 'pageUsers' | 'changedUsers'>;

/** `open` throws once the store is closed. */
export function redisDirectory(redis: Redis, key: StoreKeys, open: () => void): Directory {
  /** Entries from their fields (USER_FIELDS order), those that exist. */
  const toUsers = (rows: readonly (readonly (string | null)[])[]): StoredUser[] => {
    const users: StoredUser[] = [];
    for (const row of rows) {
      if (row[0] === null || row[0] === undefined) continue;
      const parsed = UserSchema.safeParse(Object.fromEntries(USER_FIELDS.map((f, i) => [f, row[i]])));
      if (!parsed.success) throw new StorageError('E_STORAGE', 'a directory entry in redis is malformed');
      users.push(parsed.data);
    }
    return users;
  };
  const getUsers = async (ids: readonly string[]): Promise<StoredUser[]> => {
    open();
    const rows = await Promise.all(ids.map((id) => redis.command(['HMGET', key.user(id), ...USER_FIELDS], Fields)));
    return toUsers(rows).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  };

  return {
    async saveUser(user) {
      open();
      return redis.run(SAVE_USER, [key.user(user.id), key.users, key.usersByRev, key.rev], [user.id, user.name, user.idKey, user.kaKey, user.kaSig, user.lastSeen, user.rev], Int);
    },
    async setLastSeen(id, lastSeen, rev) {
      open();
      await redis.run(SET_LAST_SEEN, [key.user(id), key.usersByRev], [id, lastSeen, rev], Int);
    },
    getUsers,
    async pageUsers(after, limit) {
      open();
      const ids = await redis.command(['ZRANGE', key.users, after === undefined ? '-' : `(${after}`, '+', 'BYLEX', 'LIMIT', 0, limit], Strings);
      return getUsers(ids);
    },
    async changedUsers(since, limit) {
      open();
      return toUsers(await redis.run(CHANGED_USERS, [key.usersByRev], [since, limit, key.user(''), ...USER_FIELDS], z.array(Fields)));
    },
  };
}
