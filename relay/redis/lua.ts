// Lua shared by the scripts: Redis's clock, directory revisions, the live nodes, presence,
// and wake-ups. A wake-up is published to the channel "P wake:<node>" of each other live
// node that holds a socket of the user, from inside the script that queued the envelope: so
// it goes out exactly when the write is committed, only to the nodes that need it, and costs
// the writing node nothing. It carries the envelope and the seq of the one before it in the
// mailbox, so that an idle delivery stream that has sent everything up to there can send it
// at once, without reading the mailbox again (relay/delivery.ts, offer()).
export const COMMON = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function nextRev(key)
  local t = redis.call('TIME')
  local r = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', key) or '0')
  if r <= last then r = last + 1 end
  redis.call('SET', key, string.format('%.0f', r))
  return r
end
local function liveNodes(nodes)
  return redis.call('ZRANGE', nodes, '(' .. now(), '+inf', 'BYSCORE')
end
local function onlineOn(prefix, live, user, except)
  for _, node in ipairs(live) do
    if node ~= except and tonumber(redis.call('HGET', prefix .. 'node:' .. node .. ':p', user) or '0') > 0 then return true end
  end
  return false
end
-- The seq of the envelope before seq in a mailbox, or 0.
local function prevSeq(mailbox, seq)
  local found = redis.call('ZRANGE', mailbox, '(' .. seq, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1, 'WITHSCORES')
  return tonumber(found[2] or '0')
end
-- Offers a just-queued mailbox member to the user's delivery streams on the other live nodes
-- that hold a socket of theirs: "<user> <seq> <prev seq>", a newline, then the member.
local function wakeOthers(prefix, nodes, user, me, seq, prev, member)
  for _, node in ipairs(liveNodes(nodes)) do
    if node ~= me and tonumber(redis.call('HGET', prefix .. 'node:' .. node .. ':p', user) or '0') > 0 then
      redis.call('PUBLISH', prefix .. 'wake:' .. node, user .. ' ' .. seq .. ' ' .. prev .. '\\n' .. member)
    end
  end
end
`;

// A user's last-seen time at a rev, in their directory entry (P u:<id>, and P users:rev, as
// users.ts keeps them): only for users in the directory, and only forward (nodes race).
export const LAST_SEEN = `
local function saveLastSeen(userKey, byRevKey, id, lastSeen, rev)
  local stored = redis.call('HGET', userKey, 'rev')
  if stored and tonumber(stored) < tonumber(rev) then
    redis.call('HSET', userKey, 'lastSeen', lastSeen, 'rev', rev)
    redis.call('ZADD', byRevKey, rev, id)
  end
end
`;
