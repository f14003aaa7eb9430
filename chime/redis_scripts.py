"""Every Lua script Chime runs in Redis: each change that must not be half-done is one script (atomic).

A script is handed every key it reads or writes in KEYS (the caller builds them with
:mod:`chime.redis_keys`); it never builds a key name itself, so each script says in its KEYS line what it
touches. Job ids, task ids, scores and job fields come in ARGV.

Which job statuses count as "handled" (the occurrence is taken care of: never write it again) and as
"live" (the job still stands for a run to come) is said once here, for Python and Lua alike.
"""
from __future__ import annotations

from rq.job import JobStatus

# An occurrence whose job hash says one of these is already taken care of: queued, running or done.
HANDLED_STATUSES = (JobStatus.QUEUED.value, JobStatus.STARTED.value, JobStatus.FINISHED.value,
                    JobStatus.DEFERRED.value)
# A job whose hash says one of these still stands for a run to come (a task with one is busy).
LIVE_STATUSES = (JobStatus.QUEUED.value, JobStatus.STARTED.value, JobStatus.SCHEDULED.value,
                 JobStatus.DEFERRED.value)


def _lua_status_test(name: str, statuses: tuple[str, ...]) -> str:
    """A Lua function `name(status)` that says whether a job status (HGET ... 'status') is one of `statuses`."""
    tests = " or ".join(f"status == '{status}'" for status in statuses)
    return f"local function {name}(status) return {tests} end\n"


IS_HANDLED = _lua_status_test("is_handled", HANDLED_STATUSES)
IS_LIVE = _lua_status_test("is_live", LIVE_STATUSES)

# Write a job hash unless that occurrence is already handled: a scheduler that lost its lock mid-pass
# must not overwrite the job the other one has already queued.
# KEYS: job hash. ARGV: the job hash as field/value pairs.
SAVE_UNLESS_HANDLED_LUA = IS_HANDLED + """
if is_handled(redis.call('HGET', KEYS[1], 'status')) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# Replace the pending occurrence of one task (or remove it when ARGV[2] is empty), if the pending one is
# still the one the caller saw (else nothing changes and the caller reads again): the old occurrence's
# job hash is then a declared key. The old one leaves the schedule (with its hash) only if still in it.
# KEYS: scheduled set, pending index, wake-up list, the seen occurrence's job hash (unused when none).
# ARGV: task id, new job id ('' removes), new score, the pending job id seen ('' for none).
# Returns {1, the id taken out of the schedule or ''}, or {0, ''} when the pending one changed.
REPLACE_PENDING_LUA = """
local task, new, seen = ARGV[1], ARGV[2], ARGV[4]
local old = redis.call('HGET', KEYS[2], task) or ''
if old ~= seen then return {0, ''} end
local dropped = ''
if old ~= '' and old ~= new and redis.call('ZREM', KEYS[1], old) == 1 then
  redis.call('DEL', KEYS[4])
  dropped = old
end
if new ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[3], new)
  redis.call('HSET', KEYS[2], task, new)
else
  redis.call('HDEL', KEYS[2], task)
end
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, 0)
return {1, dropped}
"""

# Move due occurrences onto their queues and put each task's next one in place, atomically.
# KEYS: the scheduler lock, scheduled set, pending index, queues set, then per move: the due job's hash; the
#       next job's hash if it has a next id; and if it pushes, the queue, the task's in-flight set and (if it
#       pushes another id than the due one) the pushed job's hash. (move_keys in chime.occurrence.)
# ARGV: the lock owner's token ('' = unguarded), now_text, then per move 7 values: due_id, push_id, queue,
#       task_id, next_id, next_score, next_description.
# Nothing moves unless the lock still holds that token: a scheduler that stalled past its lock's life
# (a GC or VM pause) and lost it to a standby moves nothing, even what it planned or read before.
# The next occurrence's job hash is a copy of the due one (same payload: the occurrence is in the id)
# with its own created_at and description; next ids whose due hash was missing are returned so the
# caller writes their hash in full.
MOVE_DUE_LUA = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {{}, {}} end
local moved, unsaved = {}, {}
local now_text = ARGV[2]
local k = 5
for i = 3, #ARGV, 7 do
  local due, push, queue, task, nxt, score, description =
    ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6]
  local due_job = KEYS[k]
  local push_job = due_job
  local next_job, queue_list, inflight
  if nxt ~= '' then k = k + 1; next_job = KEYS[k] end
  if push ~= '' then queue_list = KEYS[k + 1]; inflight = KEYS[k + 2]; k = k + 2 end
  if push ~= '' and push ~= due then k = k + 1; push_job = KEYS[k] end
  k = k + 1
  if redis.call('ZREM', KEYS[2], due) == 1 then
    if redis.call('HGET', KEYS[3], task) == due then
      if nxt ~= '' then
        if redis.call('COPY', due_job, next_job, 'REPLACE') == 1 then
          redis.call('HSET', next_job, 'created_at', now_text, 'description', description, 'status', 'scheduled')
        else
          unsaved[#unsaved + 1] = nxt
        end
        redis.call('ZADD', KEYS[2], score, nxt)
        redis.call('HSET', KEYS[3], task, nxt)
      else
        redis.call('HDEL', KEYS[3], task)
      end
    end
    if push ~= '' then
      redis.call('SADD', KEYS[4], queue_list)
      redis.call('HSET', push_job, 'status', 'queued', 'enqueued_at', now_text, 'origin', queue)
      redis.call('RPUSH', queue_list, push)
      redis.call('ZADD', inflight, redis.call('TIME')[1], push)
    end
    if push ~= due then
      redis.call('DEL', due_job)
    end
    moved[#moved + 1] = due
  elseif push ~= '' and push ~= due and redis.call('HGET', push_job, 'status') == 'scheduled' then
    redis.call('DEL', push_job)
  end
end
return {moved, unsaved}
"""

# MOVE_DUE_LUA's plain case -- push the due occurrence itself and put the task's next one in place -- for
# moves the scheduler planned a moment before they fell due (scheduler.dispatch: look-ahead). Nothing is
# done if the wake-up list holds anything (a task changed after the plan was read: the caller replans
# everything); a move is left undone and returned as stale unless the due occurrence is still scheduled
# and still the task's pending one, its job hash still has the task version the plan was made from, and
# (overlap SKIP) nothing of the task is in flight. Returns {moved, unsaved, changed (0/1), stale,
# the earliest scheduled {id, score} after the moves (empty if none)}.
# KEYS: the scheduler lock, scheduled set, pending index, queues set, wake-up list, then per move: the due
#       job's hash, the next job's hash if it has a next id, its queue and the task's in-flight set.
# ARGV: the lock owner's token ('' = unguarded), now_text, then per move 8 values: due_id, queue, task_id,
#       next_id, next_score, next_description, task version, '1' if the task's overlap is SKIP.
# A lock that no longer holds the token counts as a change (nothing moves; the caller replans).
MOVE_PLANNED_LUA = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {{}, {}, 1, {}, {}} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {{}, {}, 1, {}, {}} end
local moved, unsaved, stale = {}, {}, {}
local now_text = ARGV[2]
local k = 6
for i = 3, #ARGV, 8 do
  local due, queue, task, nxt, score, description, version, solo =
    ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7]
  local due_job = KEYS[k]
  local next_job
  if nxt ~= '' then k = k + 1; next_job = KEYS[k] end
  local queue_list = KEYS[k + 1]
  local inflight = KEYS[k + 2]
  k = k + 3
  if not redis.call('ZSCORE', KEYS[2], due) or redis.call('HGET', KEYS[3], task) ~= due
      or redis.call('HGET', due_job, 'chime_version') ~= version
      or (solo == '1' and redis.call('ZCARD', inflight) > 0) then
    stale[#stale + 1] = due
  else
    redis.call('ZREM', KEYS[2], due)
    if nxt ~= '' then
      if redis.call('COPY', due_job, next_job, 'REPLACE') == 1 then
        redis.call('HSET', next_job, 'created_at', now_text, 'description', description, 'status', 'scheduled')
      else
        unsaved[#unsaved + 1] = nxt
      end
      redis.call('ZADD', KEYS[2], score, nxt)
      redis.call('HSET', KEYS[3], task, nxt)
    else
      redis.call('HDEL', KEYS[3], task)
    end
    redis.call('SADD', KEYS[4], queue_list)
    redis.call('HSET', due_job, 'status', 'queued', 'enqueued_at', now_text, 'origin', queue)
    redis.call('RPUSH', queue_list, due)
    redis.call('ZADD', inflight, redis.call('TIME')[1], due)
    moved[#moved + 1] = due
  end
end
return {moved, unsaved, 0, stale, redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')}
"""

# Write and push one job onto its queue now (run now, recovery) and mark it in flight -- unless that
# occurrence is already handled (its hash says so; an in-flight marker alone is not enough, a dead
# worker leaves it behind), or scheduled.
# KEYS: queue, queues set, the task's in-flight set, the job hash, the scheduled set.
# ARGV: job id, now text, queue name, then the job hash as field/value pairs.
PUSH_NOW_LUA = IS_HANDLED + """
if is_handled(redis.call('HGET', KEYS[4], 'status')) or redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], unpack(ARGV, 4))
redis.call('HSET', KEYS[4], 'status', 'queued', 'enqueued_at', ARGV[2], 'origin', ARGV[3])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('TIME')[1], ARGV[1])
return 1
"""

# The reconciler's repairs of tasks' pending occurrences, each decided on what Redis holds *now*, so it
# never touches an occurrence the scheduler has moved or is moving (a script runs alone):
# - 'lost' fills a gap: nothing happens if the task has a live pending occurrence ('live');
# - 'stale' replaces the pending occurrence the reconciler saw, only if it is still the one
#   pending and still scheduled ('changed' otherwise);
# - the new occurrence is written only if it is not already handled ('handled').
# Several repairs per call (one round trip and one script run for a few hundred tasks after a Redis
# loss); the scheduler is woken once if any occurrence was written. Returns each repair's outcome.
# KEYS: scheduled set, pending index, wake-up list, then per repair: new job hash, old job hash.
# ARGV per repair: task id, mode, expected (old) id, new id ('' removes the pending occurrence), new score,
#       the number n of job hash items that follow, then the new job hash as n field/value items.
REPAIR_PENDING_LUA = IS_HANDLED + """
local function repair(i, a)
  local new_key = KEYS[2 + 2 * i]
  local old_key = KEYS[3 + 2 * i]
  local task, mode, expected, new = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local current = redis.call('HGET', KEYS[2], task)
  if mode == 'lost' then
    if current and redis.call('ZSCORE', KEYS[1], current) then return 'live' end
  elseif current ~= expected or not redis.call('ZSCORE', KEYS[1], expected) then
    return 'changed'
  end
  if new ~= '' and is_handled(redis.call('HGET', new_key, 'status')) then
    return 'handled'
  end
  if mode == 'stale' and expected ~= new then
    redis.call('ZREM', KEYS[1], expected)
    redis.call('DEL', old_key)
  end
  if new == '' then
    redis.call('HDEL', KEYS[2], task)
    return 'removed'
  end
  redis.call('DEL', new_key)
  redis.call('HSET', new_key, unpack(ARGV, a + 6, a + 5 + tonumber(ARGV[a + 5])))
  redis.call('ZADD', KEYS[1], ARGV[a + 4], new)
  redis.call('HSET', KEYS[2], task, new)
  return 'ok'
end
local outcomes, a, wrote = {}, 1, false
for i = 1, (#KEYS - 3) / 2 do
  outcomes[i] = repair(i, a)
  wrote = wrote or outcomes[i] == 'ok'
  a = a + 6 + tonumber(ARGV[a + 5])
end
if wrote then
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], 0, 0)
end
return outcomes
"""

# The same fields of many job hashes in one round trip (the reconciler reads every pending job's):
# {values of job 1..., values of job 2..., ...}, #ARGV values per job, false where a field is missing.
# KEYS: job hashes. ARGV: field names.
JOB_FIELDS_LUA = """
local values = {}
for i = 1, #KEYS do
  local found = redis.call('HMGET', KEYS[i], unpack(ARGV))
  for j = 1, #ARGV do values[#values + 1] = found[j] end
end
return values
"""

# The members of several in-flight sets in one round trip: {key index, job id, key index, job id, ...}.
# (A whole dispatch batch asks; most sets are empty.)
# KEYS: in-flight sets.
INFLIGHT_JOBS_LUA = """
local found = {}
for i = 1, #KEYS do
  for _, job in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    found[#found + 1] = i
    found[#found + 1] = job
  end
end
return found
"""

# Which of several job hashes stand for a run to come (see LIVE_STATUSES): their 1-based indexes in KEYS.
# KEYS: job hashes.
LIVE_JOBS_LUA = IS_LIVE + """
local live = {}
for i = 1, #KEYS do
  if is_live(redis.call('HGET', KEYS[i], 'status')) then live[#live + 1] = i end
end
return live
"""

# Remove one scheduled occurrence the reconciler found orphaned, if it still is: still in the sorted
# set (the scheduler has not moved it meanwhile) and, unless the task is gone, still not the task's
# pending occurrence. Its hash goes only with it.
# KEYS: scheduled set, pending index, job hash. ARGV: job id, task id, 'gone' or 'not-pending'.
REMOVE_ORPHAN_LUA = """
if ARGV[3] ~= 'gone' and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then return 0 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return 1
end
return 0
"""

# Take a queued occurrence of a deleted or disabled task off its queue, with its hash and its in-flight
# marker (left behind, a queued hash would make the task look busy forever).
# KEYS: queue, job hash, the task's in-flight set. ARGV: job id.
REMOVE_QUEUED_ORPHAN_LUA = """
if redis.call('LREM', KEYS[1], 0, ARGV[1]) > 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
"""

# Forget the pending occurrence of a deleted or disabled task, if it is still the one seen.
# KEYS: pending index. ARGV: task id, the job id seen.
FORGET_PENDING_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# Drop in-flight markers that no longer stand for a queued or running job: the job's hash is gone or
# says it ended, or the database already holds its outcome (ARGV flag '1'). A worker killed after
# recording a run, before it cleared its marker, leaves one behind; left alone it would make every
# later occurrence of the task look like an overlap.
# KEYS: pairs of (in-flight set, job hash). ARGV: per pair, the job id and the database's flag.
CLEAR_STALE_INFLIGHT_LUA = IS_LIVE + """
local cleared = 0
for i = 1, #KEYS, 2 do
  local job, final = ARGV[i], ARGV[i + 1]
  if final == '1' or not is_live(redis.call('HGET', KEYS[i + 1], 'status')) then
    cleared = cleared + redis.call('ZREM', KEYS[i], job)
  end
end
return cleared
"""

# Put back on its queue a job a worker took (status 'started') and died with before claiming it, if it
# is still so: same status, start time and queue as the caller saw. Its started-registry entry goes, so
# RQ's clean-up does not fail it later. (A worker that was only frozen finds its claim taken: the
# unique constraint makes the second delivery a no-op.)
# KEYS: job hash, queues set, its queue, its queue's started registry.
# ARGV: job id, the started_at seen, now text, the queue seen.
REQUEUE_ABANDONED_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'started' or redis.call('HGET', KEYS[1], 'started_at') ~= ARGV[2]
    or redis.call('HGET', KEYS[1], 'origin') ~= ARGV[4] then
  return 0
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if string.sub(member, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then redis.call('ZREM', KEYS[4], member) end
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[3])
redis.call('SADD', KEYS[2], KEYS[3])
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
"""

# Push one of Chime's periodic jobs for its time slot, once: only if the slot the caller saw as the last
# one pushed is still the last (another scheduler may have pushed it meanwhile), the new slot is later,
# and the job of the last slot is not still waiting or running (a slow pass is not doubled up). Waiting
# means on its queue; running means a worker's entry for it in the queue's started registry has not
# expired (RQ scores the entry with when the worker's heartbeat expires: a worker killed mid-job stops
# moving it on, and RQ itself counts the job abandoned from then on). A job whose hash still says
# queued or started without either (its worker died) no longer holds up the next slot.
# KEYS: the periodic index, the new job's hash, the last slot's job hash (unused when none), the queue,
#       queues set, the queue's started registry.
# ARGV: periodic job name, the slot (epoch seconds), the last slot seen ('' for none), job id, now text,
#       queue name, now (epoch seconds), the last slot's job id, then the job hash as field/value pairs.
PUSH_PERIODIC_LUA = f"""
local function is_running(job, now)
  for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. now, '+inf')) do
    if entry == job or string.sub(entry, 1, #job + 1) == job .. ':' then return true end
  end
  return false
end
local function is_waiting_or_running(job, now)
  local status = redis.call('HGET', KEYS[3], 'status')
  if status == '{JobStatus.QUEUED.value}' and redis.call('LPOS', KEYS[4], job) then return true end
  return (status == '{JobStatus.QUEUED.value}' or status == '{JobStatus.STARTED.value}') and is_running(job, now)
end
""" + """
local last = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if last ~= ARGV[3] or (last ~= '' and tonumber(last) >= tonumber(ARGV[2])) then return 0 end
if last ~= '' and is_waiting_or_running(ARGV[8], ARGV[7]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 9))
redis.call('HSET', KEYS[2], 'status', 'queued', 'enqueued_at', ARGV[5], 'origin', ARGV[6])
redis.call('SADD', KEYS[5], KEYS[4])
redis.call('RPUSH', KEYS[4], ARGV[4])
return 1
"""

# Take a job that has ended (its hash says finished, failed, stopped or canceled: nothing to come) out of
# Redis -- its hash and its entries in its queue's registries of ended jobs -- so that its id can be
# queued again; a job queued or running (even if it became so an instant ago) is left alone.
# KEYS: the job hash, its queue's finished, failed and canceled registries. ARGV: the job id.
DROP_ENDED_JOB_LUA = IS_LIVE + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or is_live(status) then return 0 end
redis.call('DEL', KEYS[1])
for i = 2, 4 do redis.call('ZREM', KEYS[i], ARGV[1]) end
return 1
"""

# Remove the rq-scheduler `repeat` entries an earlier Chime kept for its periodic jobs; a job hash goes
# too unless it is handled (on a queue, running: it then runs once more and is not scheduled again).
# KEYS: scheduled set, then the job hash of each ARGV id. ARGV: the legacy job ids.
REMOVE_LEGACY_PERIODIC_LUA = IS_HANDLED + """
local removed = 0
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    removed = removed + 1
    if not is_handled(redis.call('HGET', KEYS[i + 1], 'status')) then redis.call('DEL', KEYS[i + 1]) end
  end
end
return removed
"""

# Cancel one occurrence that waits -- in the schedule (rq-scheduler's sorted set) or on its queue -- if it
# still does: a worker that took it meanwhile has it (answer 'running'; its hash says queued or started),
# one that ended answers 'ended', an unknown job 'missing'. A cancelled pending occurrence gives way to the
# task's next one (written unless already handled), so the schedule goes on. The job itself ends as RQ's
# cancel leaves a job: status canceled, in the queue's canceled registry, its hash expiring.
# KEYS: scheduled set, pending index, wake-up list, queue, job hash, the task's in-flight set, canceled
#       registry, next job hash (unused when none).
# ARGV: job id, task id, now text, registry score (when the entry expires), hash TTL seconds, next id
#       ('' for none), next score, then the next job hash as field/value pairs.
# Returns {'scheduled' | 'queued' | 'running' | 'ended' | 'missing', the next id written or ''}.
CANCEL_WAITING_LUA = IS_HANDLED + """
local job, task, nxt = ARGV[1], ARGV[2], ARGV[6]
local written = ''
local status = redis.call('HGET', KEYS[5], 'status')
local where
if redis.call('ZREM', KEYS[1], job) == 1 then
  where = 'scheduled'
  if redis.call('HGET', KEYS[2], task) == job then
    if nxt ~= '' and not is_handled(redis.call('HGET', KEYS[8], 'status')) then
      redis.call('DEL', KEYS[8])
      redis.call('HSET', KEYS[8], unpack(ARGV, 8))
      redis.call('ZADD', KEYS[1], ARGV[7], nxt)
      redis.call('HSET', KEYS[2], task, nxt)
      written = nxt
    else
      redis.call('HDEL', KEYS[2], task)
    end
    redis.call('LPUSH', KEYS[3], '1')
    redis.call('LTRIM', KEYS[3], 0, 0)
  end
elseif redis.call('LREM', KEYS[4], 0, job) > 0 then
  where = 'queued'
  redis.call('ZREM', KEYS[6], job)
elseif status == 'queued' or status == 'started' then
  return {'running', ''}
elseif status then
  return {'ended', ''}
else
  return {'missing', ''}
end
if status then
  redis.call('HSET', KEYS[5], 'status', 'canceled', 'ended_at', ARGV[3])
  redis.call('ZADD', KEYS[7], ARGV[4], job)
  redis.call('EXPIRE', KEYS[5], ARGV[5])
end
return {where, written}
"""

# A lock's owner extends it, or releases it; nobody else can. KEYS: the lock. ARGV: owner token[, TTL ms].
EXTEND_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
