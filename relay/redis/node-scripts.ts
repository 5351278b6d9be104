// Lua for the cluster's shared view of its nodes: liveness, presence, connection counts.
//
// Keys (P = prefix): P nodes  sorted set, node id -> expiry (ms, by Redis's clock, so the
// nodes' clocks never matter); P node:<id>:p  hash, user id -> sockets of that user on the
// node; P node:<id>:c  hash, address -> connections from it to the node; P rev  the last
// directory revision handed out; P reaping  set of the keys P reap:<id>:<n>, the presence
// counts of reaped nodes, kept until every user in them was announced. A user is online while
// some live node counts a socket of theirs; a node that stops renewing its expiry is dead, and
// the first node to reap it announces who went offline with it (the nodes share that work).
import { script } from './commands.ts';
import { COMMON, LAST_SEEN } from './lua.ts';

/**
 * Users who went offline everywhere (with a dead node, or with this node's counts while it was
 * cut off): each gets a rev, saved with the last-seen time `t` in their directory entry
 * (saveLastSeen, lua.ts), and every live node, this one too, is told on its wake-up channel,
 * "-<t> <user> <rev> <user> <rev>...", each to tell its own watchers (told by the script's
 * reply instead, this node's watchers missed them when the reply was lost). Done by the node,
 * a reap cost two commands and one broadcast through the adapter's stream a user: 200,000 of
 * them kept thousands of commands queued before every send, and the broadcasts outran the
 * other nodes' readers of the stream (cut to 10,000 entries), so watchers there missed some.
 */
const OFFLINE = `${LAST_SEEN}
local function wentOffline(prefix, revKey, live, t, users)
  if #users == 0 then return end
  -- The revs in one block after the next one (nextRev for each cost a fifth of a reap).
  local first = nextRev(revKey)
  redis.call('SET', revKey, string.format('%.0f', first + #users - 1))
  local told = {}
  for i, user in ipairs(users) do
    local rev = string.format('%.0f', first + i - 1)
    saveLastSeen(prefix .. 'u:' .. user, prefix .. 'users:rev', user, t, rev)
    told[#told + 1] = user .. ' ' .. rev
  end
  local notice = '-' .. t .. ' ' .. table.concat(told, ' ')
  for _, node in ipairs(live) do redis.call('PUBLISH', prefix .. 'wake:' .. node, notice) end
end
`;

/**
 * KEYS: nodes. ARGV: node, ttl ms. Renews a live node and returns 0. Returns 1, renewing
 * nothing, when the node is missing (new, or reaped) or has lapsed (not renewed within its
 * ttl, so the others took it for dead meanwhile, even if none reaped it): its users may have
 * been seen offline, and only RESYNC brings it back, with its counts. So the news is told
 * again by every heartbeat until a RESYNC has run: a reply lost on the way cannot lose it.
 */
export const HEARTBEAT = script(`${COMMON}
local t = now()
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not before or tonumber(before) <= t then return 1 end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[1])
return 0
`);

/** KEYS: rev. Returns a directory revision. */
export const REV = script(`${COMMON}
return nextRev(KEYS[1])
`);

/**
 * KEYS: node presence, rev, nodes. ARGV: user, this node, prefix. Counts a socket; tells
 * the other live nodes that count the user ("+<user>" on their wake-up channel: what they
 * hold in memory for the user goes into the mailbox, for this socket too). Returns the rev of
 * the change.
 */
export const JOIN = script(`${COMMON}
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
for _, node in ipairs(liveNodes(KEYS[3])) do
  if node ~= ARGV[2] and tonumber(redis.call('HGET', ARGV[3] .. 'node:' .. node .. ':p', ARGV[1]) or '0') > 0 then
    redis.call('PUBLISH', ARGV[3] .. 'wake:' .. node, '+' .. ARGV[1])
  end
end
return nextRev(KEYS[2])
`);

/** KEYS: node presence, nodes, rev. ARGV: user, node, prefix. Returns {1 if now offline everywhere, rev}. */
export const LEAVE = script(`${COMMON}
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local online = left > 0 or onlineOn(ARGV[3], liveNodes(KEYS[2]), ARGV[1], ARGV[2])
return {online and 0 or 1, nextRev(KEYS[3])}
`);

/** KEYS: nodes. ARGV: prefix, user ids... Returns 1 or 0 per id. */
export const ONLINE = script(`${COMMON}
local live = liveNodes(KEYS[1])
local out = {}
for i = 2, #ARGV do out[#out + 1] = onlineOn(ARGV[1], live, ARGV[i], nil) and 1 or 0 end
return out
`);

/**
 * KEYS: nodes, rev, reaping. ARGV: prefix, chunk size. Claims the dead nodes (ZREM:
 * only one reaper wins each): their connection counts go, and their presence counts are set
 * aside, each under a name of its own (the node may come back, RESYNC, and be reaped again
 * meanwhile) listed in the set "reaping". Then it takes up to `chunk size` users set aside (by
 * any reaper), saves and tells those who went offline (OFFLINE), and returns 1 if more are
 * left, else 0. Their node no longer counts as live, so they are
 * offline from the claim on; the chunks only find whom to announce. One script for all the
 * users of a node held Redis (every node's commands) for 6 µs a user: eight dead nodes of
 * 50,000 users ran past the 2 s deadline, and its reply, the only word of who went offline,
 * was lost.
 */
export const REAP = script(`${COMMON}${OFFLINE}
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', now(), 'BYSCORE', 'LIMIT', 0, 16)) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('UNLINK', ARGV[1] .. 'node:' .. node .. ':c')
  local presence = ARGV[1] .. 'node:' .. node .. ':p'
  if redis.call('EXISTS', presence) == 1 then
    local aside = ARGV[1] .. 'reap:' .. node .. ':' .. string.format('%.0f', nextRev(KEYS[2]))
    redis.call('RENAME', presence, aside)
    redis.call('SADD', KEYS[3], aside)
  end
end
local live = liveNodes(KEYS[1])
local gone, left = {}, tonumber(ARGV[2])
for _, aside in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if left <= 0 then break end
  local users = redis.call('HRANDFIELD', aside, left)
  if #users > 0 then redis.call('HDEL', aside, unpack(users)) end
  if redis.call('EXISTS', aside) == 0 then redis.call('SREM', KEYS[3], aside) end
  left = left - #users
  for _, user in ipairs(users) do
    if not onlineOn(ARGV[1], live, user, nil) then gone[#gone + 1] = user end
  end
end
local t = string.format('%.0f', now())
wentOffline(ARGV[1], KEYS[2], live, t, gone)
return redis.call('SCARD', KEYS[3]) > 0 and 1 or 0
`);

/** KEYS: nodes. ARGV: node. Marks a node dead now, for the next reap (a graceful stop). */
export const RETIRE = script(`
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
`);

/**
 * KEYS: node presence, node connections, nodes, rev. ARGV: node, prefix, ttl ms, user count,
 * user, sockets, ..., address, connections, ... Rewrites this node's counts from what it
 * really holds (after an outage, or after being presumed dead) and renews it. Saves and tells
 * the users it had counted who are now offline everywhere (OFFLINE). Returns 0.
 */
export const RESYNC = script(`${COMMON}${OFFLINE}
local before = redis.call('HKEYS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
local mine = {}
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  mine[ARGV[i]] = true
  i = i + 2
end
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('ZADD', KEYS[3], now() + tonumber(ARGV[3]), ARGV[1])
local live = liveNodes(KEYS[3])
local gone = {}
for _, user in ipairs(before) do
  if not mine[user] and not onlineOn(ARGV[2], live, user, nil) then gone[#gone + 1] = user end
end
local t = string.format('%.0f', now())
wentOffline(ARGV[2], KEYS[4], live, t, gone)
return 0
`);

/** KEYS: node connections. ARGV: address, +1 or -1. */
export const CONNECTION = script(`
if redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`);

/**
 * KEYS: nodes, block, this node's connections. ARGV: prefix, address, max. Returns the
 * refusal code, or '' having counted the connection on this node: checked and counted in one
 * step, so that a burst of connections (to any nodes) cannot pass the check together.
 */
export const ADMIT = script(`${COMMON}
if redis.call('EXISTS', KEYS[2]) == 1 then return 'E_THROTTLED' end
local total = 0
for _, node in ipairs(liveNodes(KEYS[1])) do
  total = total + tonumber(redis.call('HGET', ARGV[1] .. 'node:' .. node .. ':c', ARGV[2]) or '0')
end
if total >= tonumber(ARGV[3]) then return 'E_TOO_MANY_CONNECTIONS' end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return ''
`);

/** KEYS: failures, block. ARGV: window ms, max failures, block ms. */
export const FAILED = script(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
end
return n
`);
