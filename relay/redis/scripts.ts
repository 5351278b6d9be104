// The Lua scripts that make the Redis store's writes atomic. Each runs alone in Redis: no
// other command interleaves, so a check and the write it guards cannot be separated.
//
// A mailbox entry is a sorted-set member scored by its seq: a header line, then the
// envelope's JSON. Messages: "m <body bytes> <sender> <id>\n{json}"; receipts: "r\n{json}".
// The header lets a script account for the quota and write receipts without decoding JSON.
// Scripts name some keys they build themselves (the senders' mailboxes, the nodes' presence):
// fine on one Redis primary (with replicas), not meant for a sharded Redis Cluster.
import { script } from './commands.ts';
import { COMMON, LAST_SEEN } from './lua.ts';

/** KEYS: relay hash. ARGV: new id, new secret. The first node to start decides both. */
export const IDENTITY = script(`
redis.call('HSETNX', KEYS[1], 'id', ARGV[1])
redis.call('HSETNX', KEYS[1], 'secret', ARGV[2])
return redis.call('HMGET', KEYS[1], 'id', 'secret')
`);

// An idempotency record is "<seq> <digest>", then " <delivered at>" when its sender was
// answered with the delivery, or " held" while a node keeps the message in memory for a
// recipient connected to it (relay/redis/held.ts): then a resend through another node waits;
// or " wait:<node>" while the sender's node waits for the recipient, connected to another
// node, to take it: the acknowledgement then tells that node instead of queueing a receipt.
// A resend meanwhile takes the waiting node's place: the record goes back to "<seq> <digest>"
// and a receipt will follow.
// The checks every accept starts with: an earlier record, then the recipient's quota, which
// counts the messages held in a node's memory for them (CLAIM reserves, WRITE and RECORD give
// back): each is written into the mailbox unless taken, and its sender is not refused then.
// The reservations' count and bytes are running totals (hn, hb in the quota hash) beside
// their set, so a check costs the same however many are held; those past their time are
// swept here, once each. A set that lapsed whole (its key expires with its last reservation)
// leaves totals behind that count nothing: with no set, the totals are zero. They never go
// below zero (reservations made by an older version, which kept no totals, are swept too).
// KEYS[1] sent record, KEYS[3] quota, KEYS[6] held reservations; ARGV[1] digest, ARGV[2] body
// bytes, ARGV[3] max messages, ARGV[4] max bytes. Returns a reply to give back at once, or nil
// to go on.
const CHECKS = `
local function checks()
  local prior = redis.call('GET', KEYS[1])
  if prior then
    local seq, digest, extra = string.match(prior, '^(%d+) (%S+) ?(%S*)$')
    if digest ~= ARGV[1] then return {'conflict', 0, 0} end
    if extra == 'held' then return {'held', tonumber(seq), 0} end
    if string.sub(extra, 1, 5) == 'wait:' then
      redis.call('SET', KEYS[1], seq .. ' ' .. digest, 'KEEPTTL')
      return {'duplicate', tonumber(seq), 0}
    end
    return {'duplicate', tonumber(seq), tonumber(extra) or 0}
  end
  local quota = redis.call('HMGET', KEYS[3], 'n', 'b', 'hn', 'hb')
  local n, b = tonumber(quota[1] or '0'), tonumber(quota[2] or '0')
  local hn, hb = tonumber(quota[3] or '0'), tonumber(quota[4] or '0')
  -- Reservations past their time (a node died holding them, or failed to give them back) go
  -- first: those read here, at one instant, are the ones removed and taken off the totals.
  local t = now()
  local expired = redis.call('ZRANGE', KEYS[6], '-inf', t, 'BYSCORE')
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', t)
    for _, r in ipairs(expired) do
      hn = hn - 1
      hb = hb - tonumber(string.match(r, ' (%d+)$'))
    end
  end
  if redis.call('EXISTS', KEYS[6]) == 0 then hn, hb = 0, 0 end
  hn, hb = math.max(hn, 0), math.max(hb, 0)
  if hn ~= tonumber(quota[3] or '0') or hb ~= tonumber(quota[4] or '0') then
    redis.call('HSET', KEYS[3], 'hn', hn, 'hb', hb)
  end
  if n + hn + 1 > tonumber(ARGV[3]) or b + hb + tonumber(ARGV[2]) > tonumber(ARGV[4]) then
    return {'full', 0, 0}
  end
  return nil
end
`;

// Gives back a held message's reservation ("<seq> <body bytes>" in P mh:<user>, scored by when
// it expires) and takes it off the totals in the quota hash: it was written (and counts in the
// quota now) or taken. Each reservation expires with its own held record, so one never given
// back (its node died, or the release failed) stops counting then, however busy the recipient;
// a release after that (swept, or its set lapsed) finds nothing and changes no total.
const UNRESERVE = `
local function unreserve(key, quota, seq, size)
  if redis.call('ZREM', key, seq .. ' ' .. size) == 1 then
    redis.call('HINCRBY', quota, 'hn', -1)
    redis.call('HINCRBY', quota, 'hb', -tonumber(size))
  end
end
`;

/**
 * KEYS: sent record, mailbox, quota, seq counter, nodes, held reservations.
 * ARGV: digest, body bytes, max messages, max bytes, retention ms, header, JSON after "{",
 * prefix, this node, recipient, "1" to wait for a recipient connected to another node.
 * Dedup check, quota check, seq, append, idempotency record, wake-up: all or nothing.
 * Returns {outcome, seq, seq of the envelope before it in the mailbox}; for a duplicate the
 * third is the time it was delivered (0: not known). The outcome is "waiting" instead of
 * "accepted" when the record names this node as waiting (the recipient is connected elsewhere).
 */
export const ACCEPT = script(`${COMMON}${CHECKS}
local early = checks()
if early then return early end
local size = tonumber(ARGV[2])
local seq = redis.call('INCR', KEYS[4])
local member = ARGV[6] .. '{"seq":' .. seq .. ',' .. ARGV[7]
redis.call('ZADD', KEYS[2], seq, member)
redis.call('HINCRBY', KEYS[3], 'n', 1)
redis.call('HINCRBY', KEYS[3], 'b', size)
local waiting = ARGV[11] == '1' and onlineOn(ARGV[8], liveNodes(KEYS[5]), ARGV[10], ARGV[9])
redis.call('SET', KEYS[1], seq .. ' ' .. ARGV[1] .. (waiting and (' wait:' .. ARGV[9]) or ''), 'PX', ARGV[5])
local prev = prevSeq(KEYS[2], seq)
wakeOthers(ARGV[8], KEYS[5], ARGV[10], ARGV[9], seq, prev, member)
return {waiting and 'waiting' or 'accepted', seq, prev}
`);

/**
 * KEYS: sent record, mailbox, quota, seq counter, nodes, held reservations. ARGV: digest,
 * body bytes, max messages, max bytes, marker lifetime ms, prefix, this node, recipient.
 * For a recipient connected to this node: the same checks, a seq, a reservation of its room
 * in the quota, and a "held" record; both expire unless the node settles them (RECORD or
 * WRITE). Nothing enters the mailbox.
 * Returns as ACCEPT; or {"elsewhere", 0, 0}, having claimed nothing, when the recipient is
 * also connected to another live node: a message kept here would reach only their sockets
 * here, so it goes through the mailbox (ACCEPT), which wakes the other nodes.
 */
export const CLAIM = script(`${COMMON}${CHECKS}
local early = checks()
if early then return early end
if onlineOn(ARGV[6], liveNodes(KEYS[5]), ARGV[8], ARGV[7]) then return {'elsewhere', 0, 0} end
local seq = redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[1], seq .. ' ' .. ARGV[1] .. ' held', 'PX', ARGV[5])
redis.call('ZADD', KEYS[6], now() + tonumber(ARGV[5]), seq .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[6], ARGV[5])
redis.call('HINCRBY', KEYS[3], 'hn', 1)
redis.call('HINCRBY', KEYS[3], 'hb', tonumber(ARGV[2]))
return {'accepted', seq, prevSeq(KEYS[2], seq)}
`);

/**
 * KEYS: sent record, mailbox, quota, nodes, held reservations. ARGV: digest, body bytes,
 * retention ms, seq, mailbox member, prefix, this node, recipient.
 * A held message its recipient did not take in time goes into the mailbox after all; its
 * reservation becomes quota.
 */
export const WRITE = script(`${COMMON}${UNRESERVE}
local seq = tonumber(ARGV[4])
unreserve(KEYS[5], KEYS[3], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[5])
redis.call('HINCRBY', KEYS[3], 'n', 1)
redis.call('HINCRBY', KEYS[3], 'b', tonumber(ARGV[2]))
redis.call('SET', KEYS[1], seq .. ' ' .. ARGV[1], 'PX', ARGV[3])
wakeOthers(ARGV[6], KEYS[4], ARGV[8], ARGV[7], seq, prevSeq(KEYS[2], seq), ARGV[5])
return seq
`);

/** KEYS: mailbox, seq counter, nodes. ARGV: JSON after "{", prefix, this node, recipient. Queues a receipt; returns its seq. */
export const POST = script(`${COMMON}
local seq = redis.call('INCR', KEYS[2])
local member = 'r\\n{"seq":' .. seq .. ',' .. ARGV[1]
redis.call('ZADD', KEYS[1], seq, member)
wakeOthers(ARGV[2], KEYS[3], ARGV[4], ARGV[3], seq, prevSeq(KEYS[1], seq), member)
return seq
`);

/**
 * KEYS: mailbox, quota, seq counter, nodes. ARGV: recipient, time, key prefix, this node,
 * next after seq, next limit (0: none), seqs...
 * Removes the acknowledged envelopes and queues one delivered receipt per sender (waking
 * them elsewhere), at once; a message whose sender's node waits for it (" wait:<node>"
 * record) gets no receipt: its record takes the time, and that node is told with
 * "!<sender> <id> <time>" on its wake-up channel. Returns {removed count, {sender, prev seq,
 * receipt member, ...}, next page}.
 */
export const ACKNOWLEDGE = script(`${COMMON}
local removed, senders, ids, offers = 0, {}, {}, {}
local count, bytes = 0, 0
for i = 7, #ARGV do
  local member = redis.call('ZRANGE', KEYS[1], ARGV[i], ARGV[i], 'BYSCORE')[1]
  if member then
    redis.call('ZREM', KEYS[1], member)
    removed = removed + 1
    local size, from, id = string.match(member, '^m (%d+) (%S+) (%S+)\\n')
    if size then
      count = count + 1
      bytes = bytes + tonumber(size)
      local record = ARGV[3] .. 'sent:' .. from .. ':' .. id
      local rseq, rdigest, waiter = string.match(redis.call('GET', record) or '', '^(%d+) (%S+) wait:(%S+)$')
      if waiter then
        redis.call('SET', record, rseq .. ' ' .. rdigest .. ' ' .. ARGV[2], 'KEEPTTL')
        redis.call('PUBLISH', ARGV[3] .. 'wake:' .. waiter, '!' .. from .. ' ' .. id .. ' ' .. ARGV[2])
      else
        if not ids[from] then
          ids[from] = {}
          senders[#senders + 1] = from
        end
        table.insert(ids[from], '"' .. id .. '"')
      end
    end
  end
end
if count > 0 then
  redis.call('HINCRBY', KEYS[2], 'n', -count)
  redis.call('HINCRBY', KEYS[2], 'b', -bytes)
end
for _, from in ipairs(senders) do
  local seq = redis.call('INCR', KEYS[3])
  local json = '{"seq":' .. seq .. ',"kind":"receipt","from":"' .. ARGV[1] .. '","state":"delivered","ids":[' .. table.concat(ids[from], ',') .. '],"at":' .. ARGV[2] .. '}'
  local mailbox = ARGV[3] .. 'mb:' .. from
  local member = 'r\\n' .. json
  redis.call('ZADD', mailbox, seq, member)
  local prev = prevSeq(mailbox, seq)
  wakeOthers(ARGV[3], KEYS[4], from, ARGV[4], seq, prev, member)
  offers[#offers + 1] = from
  offers[#offers + 1] = prev
  offers[#offers + 1] = member
end
local following = {}
if tonumber(ARGV[6]) > 0 then
  following = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[5], '+inf', 'BYSCORE', 'LIMIT', 0, ARGV[6])
end
return {removed, offers, following}
`);

/**
 * KEYS: mailbox, quota, dead letters. ARGV: the seqs of members that cannot be read.
 * Mailbox members that cannot be read (written by hand, or by a faulty version) move to the
 * dead letters, kept with their seqs for an operator: left in the mailbox, they would fail
 * every page of it. Found by seq, not by their text: a member that is not valid UTF-8 reaches
 * the node altered, and would never match. A message header gives its quota back, as
 * ACKNOWLEDGE would, but never below zero (one written by hand was never counted). Returns
 * how many moved (another node may have moved them first).
 */
export const SET_ASIDE = script(`
local moved, count, bytes = 0, 0, 0
for i = 1, #ARGV do
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], ARGV[i], ARGV[i], 'BYSCORE')) do
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', KEYS[3], ARGV[i], member)
    moved = moved + 1
    local size = string.match(member, '^m (%d+) %S+ %S+\\n')
    if size then
      count = count + 1
      bytes = bytes + tonumber(size)
    end
  end
end
if count > 0 then
  if redis.call('HINCRBY', KEYS[2], 'n', -count) < 0 then redis.call('HSET', KEYS[2], 'n', 0) end
  if redis.call('HINCRBY', KEYS[2], 'b', -bytes) < 0 then redis.call('HSET', KEYS[2], 'b', 0) end
end
return moved
`);

/**
 * KEYS: sent records, then their recipients' held reservations, then their quotas. ARGV: the
 * records' values, then their body bytes, then the expiry in ms.
 * The records of held messages their recipients took ("<seq> <digest> <delivered at>"),
 * several at once, and their reservations given back.
 */
export const RECORD = script(`${UNRESERVE}
local count = #KEYS / 3
local px = ARGV[#ARGV]
for i = 1, count do
  redis.call('SET', KEYS[i], ARGV[i], 'PX', px)
  unreserve(KEYS[count + i], KEYS[2 * count + i], string.match(ARGV[i], '^%d+'), ARGV[count + i])
end
return count
`);

/**
 * KEYS: sent record. ARGV: this node.
 * The sender's node stops waiting: a record that still names it goes back to "<seq> <digest>"
 * (a receipt will follow the acknowledgement); returns the delivery time when the recipient
 * took it meanwhile, else 0.
 */
export const UNWAIT = script(`
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local seq, digest, extra = string.match(record, '^(%d+) (%S+) ?(%S*)$')
if extra == 'wait:' .. ARGV[1] then
  redis.call('SET', KEYS[1], seq .. ' ' .. digest, 'KEEPTTL')
  return 0
end
return tonumber(extra) or 0
`);

/**
 * KEYS: user hash, user index, users by rev, rev counter. ARGV: id, name, idKey, kaKey,
 * kaSig, lastSeen, rev. The idKey never changes. Returns the rev saved: a new one when
 * another change took a later rev since this one was taken (on another node, or for another
 * user). Saved at the older rev, the entry would land behind the cursor of a client that read
 * that change (directory:changes), and the client would never read this one.
 */
export const SAVE_USER = script(`${COMMON}
local rev = ARGV[7]
-- Another change (of anyone) took a later rev since: a client may have read it, and its
-- cursor is past this rev. Saved at it, the entry would never reach that client.
if tonumber(redis.call('GET', KEYS[4]) or '0') > tonumber(rev) then
  rev = string.format('%.0f', nextRev(KEYS[4]))
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'idKey', ARGV[3], 'firstSeen', ARGV[6])
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'kaKey', ARGV[4], 'kaSig', ARGV[5], 'lastSeen', ARGV[6], 'rev', rev)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], rev, ARGV[1])
return tonumber(rev)
`);

/** KEYS: user hash, users by rev. ARGV: id, lastSeen, rev. Only for users that exist, and only forward (nodes race). */
export const SET_LAST_SEEN = script(`${LAST_SEEN}
saveLastSeen(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
return 1
`);

/**
 * KEYS: users by rev. ARGV: since, limit, the user hashes' key prefix ("P u:"), then the fields
 * to read. The entries changed after `since`, in rev order, read in one step: read in two
 * (the ids, then the entries), an entry changed in between came back with its new rev, last,
 * and the page's cursor moved past every entry not read yet.
 */
export const CHANGED_USERS = script(`
local rows = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '(' .. ARGV[1], '+inf', 'BYSCORE', 'LIMIT', 0, ARGV[2])) do
  rows[#rows + 1] = redis.call('HMGET', ARGV[3] .. id, unpack(ARGV, 4))
end
return rows
`);
