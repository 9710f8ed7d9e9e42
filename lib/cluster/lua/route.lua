--! keys: dynamic
-- Route-or-store's decision, atomically in the users' slots (one slot per call on a cluster;
-- any number of users on one Redis). For each message, in order: the nodes holding a
-- subscription of its user to its destination, less `exclude` and the nodes found gone at an
-- earlier hand-off; this node → `local`; other nodes → handed off, or returned for the caller to
-- hand off (relay-handoff.lua); none → the message is appended to the inbox here (capped,
-- expiring), so that a subscription registered before it is never missed.
--
-- Candidates: on one Redis every key is in reach, so the caller names, as KEYS, the streams of
-- the nodes its recent messages went to; a message whose targets are all candidates with a
-- stream is handed off here, in the same step (one call per message at low rates, as the
-- bare relay), by the rules of relay-handoff.lua. On a cluster there are none (other slots).
--
-- KEYS per subscription (a user and destination some of the messages go to, each once): subs,
--      inbox, inboxes, inbox-bytes; then per candidate: stream, stream-bytes
-- ARGV self, max messages, ttl, overflow, max bytes (the user's), max stream bytes, max entry
--      bytes, n, n gone node ids, c, c candidate node ids, s (subscriptions), heads, bodies, push.
--      The messages in two arguments (arguments per message were the sender's largest cost: its
--      client's command building and the garbage of it): heads, per message u16 subscription
--      (0-based), u8 kept (1: accepted already, never refused), str16 exclude; bodies, per
--      message u32 length + envelope (kind, str16 user, str16 destination, message) — the very
--      layout of a stream entry's 'b' field, so that consecutive messages for one node are handed
--      off as one slice of `bodies` (all of it, uncopied, when the whole batch goes to one node),
--      and an envelope is never made a Lua string of its own unless it is stored (per-message
--      strings were most of the script's time at saturation: docs/bench/two-node-profile.md);
--      push (1: each stream entry written here is also published for a push-fed reader, lib.lua
--      relay_append)
-- → { sets, codes }: sets, the lists of target node ids (sorted) the messages have; codes, runs
--   of messages with the same outcome, three integers each, in order: how many messages, then
--   local (1) + 2 × handed off here (1) + 4 × its set (1-based; 0: none), then stored (0 | 1 +
--   dropped | INBOX_REFUSED | INBOX_REFUSED_BYTES | RELAY_FULL). A batch's messages mostly share
--   one outcome: the reply stays three integers where it was two a message.
--   A set not handed off here is left to the caller to hand off.
local self, max, ttl, overflow = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local maxBytes, maxStream, maxEntry = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local n = tonumber(ARGV[8])
local gone = {}
for i = 9, 8 + n do gone[ARGV[i]] = true end
local c = tonumber(ARGV[9 + n])
local subscriptions = tonumber(ARGV[10 + n + c])
local heads, bodies = ARGV[11 + n + c], ARGV[12 + n + c]
local push = ARGV[13 + n + c] == '1'
-- Candidate id → { stream key, bytes key, bytes queued (read once), and the entry being gathered:
-- its messages' records in `bodies` as runs of consecutive ones (closed runs in `runs`, from/to
-- pairs; the open one in `from`, `to`), how many, their envelopes' bytes }.
local candidates = {}
for j = 1, c do
  local stream, bytes = KEYS[subscriptions * 4 + 2 * j - 1], KEYS[subscriptions * 4 + 2 * j]
  candidates[ARGV[9 + n + j]] = { stream = stream, bytes = bytes }
end
local function open(id)
  local cand = candidates[id]
  if cand == nil then return nil end
  if cand.exists == nil then
    cand.exists = redis.call('EXISTS', cand.stream) == 1
    if cand.exists then cand.queued, cand.runs, cand.count, cand.size = tonumber(redis.call('GET', cand.bytes) or '0'), {}, 0, 0 end
  end
  if cand.exists then return cand end
  return nil
end
-- One stream entry of a candidate's gathered messages: a lone one as field 'e' (its envelope), several
-- as 'b' (their records as they lie in `bodies`).
local function write(cand)
  if cand.count == 0 then return end
  local field, value = 'b', nil
  if cand.count == 1 then
    field, value = 'e', string.sub(bodies, cand.from + 4, cand.to)
  elseif #cand.runs == 0 then
    value = (cand.from == 1 and cand.to == #bodies) and bodies or string.sub(bodies, cand.from, cand.to)
  else
    local runs, parts = cand.runs, {}
    for j = 1, #runs, 2 do parts[#parts + 1] = string.sub(bodies, runs[j], runs[j + 1]) end
    parts[#parts + 1] = string.sub(bodies, cand.from, cand.to)
    value = table.concat(parts)
  end
  relay_append(cand.stream, cand.bytes, cand.size, field, value, push)
  cand.runs, cand.count, cand.size = {}, 0, 0
end
-- Adds the record at from..to (u32 length + envelope of `length` bytes) to a candidate's entry.
local function gather(cand, from, to, length)
  -- Large messages gain nothing from packing: an entry stays bounded.
  if cand.count > 0 and cand.size + length > maxEntry then write(cand) end
  if cand.count == 0 then
    cand.from, cand.to = from, to
  elseif cand.to + 1 == from then
    cand.to = to
  else
    local runs = cand.runs
    local r = #runs
    runs[r + 1] = cand.from
    runs[r + 2] = cand.to
    cand.from, cand.to = from, to
  end
  cand.count = cand.count + 1
  cand.size = cand.size + length
  cand.queued = cand.queued + length
end
-- A batch holds many messages for few subscriptions, and nothing here changes who holds one:
-- each subscription's holders are read, and its targets worked out, once per exclude.
local decided = {}
-- The target lists of the reply (sorted node ids), each once; `used`: candidates written to.
local sets = {}
local used = {}
local codes = {}
-- The open run of outcomes: its code, stored, length.
local runCode, runStored, runLength = 0, 0, 0
local function close_run()
  local k = #codes
  codes[k + 1] = runLength
  codes[k + 2] = runCode
  codes[k + 3] = runStored
end
local at, size, from = 1, #heads, 1
while at <= size do
  local s, keptFlag, exclude
  s, keptFlag, exclude, at = struct.unpack('>HBHc0', heads, at)
  local length = struct.unpack('>I4', bodies, from)
  local to = from + 3 + length
  local kept = keptFlag == 1
  local bySubscription = decided[s]
  if bySubscription == nil then
    bySubscription = {}
    decided[s] = bySubscription
  end
  local d = bySubscription[exclude]
  if d == nil then
    local isLocal, targets = 0, {}
    for _, id in ipairs(redis.call('HKEYS', KEYS[4 * s + 1])) do
      if id ~= exclude and not gone[id] then
        if id == self then
          isLocal = 1
        elseif candidates[id] == nil or open(id) ~= nil then
          -- A candidate without a stream (reaped, departed, or rejoining and not reopened yet) is
          -- gone for this message, decided here, atomically: a rejoining node takes its inbox
          -- back only once its stream is open again, so what is stored now is taken back then.
          targets[#targets + 1] = id
        end
      end
    end
    -- Inline: every target is a candidate (with a stream: see above).
    local inline = #targets > 0
    for _, id in ipairs(targets) do
      if candidates[id] == nil then inline = false end
    end
    local set = 0
    if #targets > 0 then
      local sorted = {}
      for j, id in ipairs(targets) do sorted[j] = id end
      table.sort(sorted)
      sets[#sets + 1] = sorted
      set = #sets
    end
    d = { isLocal = isLocal, targets = targets, inline = inline, set = set }
    bySubscription[exclude] = d
  end
  local targets = d.targets
  local stored, handed = 0, 0
  if d.isLocal == 0 and #targets == 0 then
    -- The envelope: kind, str16 user, str16 destination, then the message.
    local _, destination, messageAt = struct.unpack('>Hc0Hc0', bodies, from + 5)
    local appended = append(KEYS[4 * s + 2], KEYS[4 * s + 3], KEYS[4 * s + 4], destination, string.sub(bodies, messageAt, to), max, maxBytes, ttl, overflow, kept)
    stored = appended < 0 and appended or 1 + appended
  elseif d.inline then
    -- None may be full: a message is refused whole.
    local full = false
    if maxStream > 0 and not kept then
      for _, id in ipairs(targets) do
        if candidates[id].queued + length > maxStream then full = true end
      end
    end
    if full then
      stored = RELAY_FULL
    else
      for _, id in ipairs(targets) do
        gather(candidates[id], from, to, length)
        if not used[id] then used[id], used[#used + 1] = true, id end
      end
      handed = 1
    end
  end
  -- Integers, not nested arrays (those cost the sender more to read than to route).
  local code = d.isLocal + 2 * handed + 4 * (stored == RELAY_FULL and 0 or d.set)
  if runLength > 0 and code == runCode and stored == runStored then
    runLength = runLength + 1
  else
    if runLength > 0 then close_run() end
    runCode, runStored, runLength = code, stored, 1
  end
  from = to + 1
end
if runLength > 0 then close_run() end
for _, id in ipairs(used) do write(candidates[id]) end
return { sets, codes }
