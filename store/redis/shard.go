package redis

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

// Shards: on Redis Cluster one hash tag puts the whole load on one
// primary. A prefix created on Cluster is therefore split into shards,
// each a hash tag of its own (shard 0 is the home base, shard i>0 the tag
// with ".i" appended: "otpbot:{otpbot.3}:"), so that a cluster spreads them
// over its primaries.
//
// What a push writes stays in one slot, so Ingest stays one atomic script:
// a push's shard is chosen by its group (ev.Group, the part of a message id
// before its last '@'), and the shard holds the push's dedupe mark, its
// history entries, its messages (one per target), their tasks and their
// outbox queues. Later writes to a message and its tasks (Claim, Complete,
// CompleteMessage, Retry, UpdateMessage) go to the same shard, so each stays
// one script too. The home base keeps what is shared by every push: links,
// invites, Once marks, leases, the installation secret, the rate budget and
// the history sequence.
//
// What is no longer one script on a sharded prefix:
//   - Ingest reads the links (and takes the history sequence number) in
//     the home slot, then writes the push in its shard: a link made or
//     removed in between applies from the next push on, as if it had come
//     a moment later or earlier;
//   - Claim looks at the heads of every shard's queues, then leases the
//     most urgent of them shard by shard: another process may take some in
//     between, and the claim comes back short;
//   - NextDue, Pending, MessagesForChat, History and Export read every
//     shard (in one pipeline per primary);
//   - a task enqueued with a change to a message or task of another shard
//     (never done by the bot, whose follow-up tasks are the message's
//     own) is enqueued once that change succeeded, not with it: a crash in
//     between loses it.
//
// A prefix that already holds data in the one-tag layout (made by an
// earlier version, or on a standalone server) keeps it: the layout is
// chosen once, when the prefix is first used, and recorded in the home
// slot ("layout": the number of shards). Standalone and Sentinel servers
// get one shard: on one primary, shards would only cost round trips.
// Moving an existing prefix to shards goes through `otpbot migrate` into a
// fresh prefix.

// clusterShards is how many shards a prefix first used on Redis Cluster
// gets: enough to spread over a few primaries, few enough that reading
// every shard (NextDue, Claim's look) stays cheap.
const clusterShards = 16

// layoutKey records the number of shards of the prefix.
func (k keys) layoutKey() string { return k.base + "layout" }

// shardBase returns the base of shard i of the home base: the home base
// itself for shard 0, else its hash tag with ".i.j" appended, j the
// smallest number that puts the tag in the i-th of clusterShards equal
// ranges of hash slots (i modulo clusterShards). A cluster gives each
// primary a range of slots, so shards spread evenly over the slot space
// spread evenly over the primaries, whatever the prefix.
func shardBase(home string, i int) string {
	if i == 0 {
		return home
	}
	open := strings.IndexByte(home, '{')
	end := open + strings.IndexByte(home[open:], '}')
	tag := home[open+1 : end]
	seg := i % clusterShards
	lo, hi := seg*slotCount/clusterShards, (seg+1)*slotCount/clusterShards
	for j := 0; ; j++ {
		t := tag + "." + strconv.Itoa(i) + "." + strconv.Itoa(j)
		if slot := int(crc16(t)) % slotCount; slot >= lo && slot < hi {
			return home[:open+1] + t + home[end:]
		}
	}
}

// slotCount is the number of Redis Cluster hash slots.
const slotCount = 16384

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM): a key's slot is
// crc16(its hash tag) modulo slotCount.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// shardOfGroup returns the shard, of n, of a push group.
func shardOfGroup(group string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(group))
	return int(h.Sum32() % uint32(n))
}

// groupOfMessage returns the group part of a message id (everything before
// its last '@'; a target holds none), or the whole id when it has none.
func groupOfMessage(id string) string {
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		return id[:i]
	}
	return id
}

// shardOfTask returns the shard of a task: its message's, or its own id's
// when it has no message.
func shardOfTask(t otpbot.Task, n int) int {
	if t.MessageID != "" {
		return shardOfGroup(groupOfMessage(t.MessageID), n)
	}
	return shardOfGroup(t.ID, n)
}

// wakeChannels are the channels the scripts of every possible shard
// publish on (their base's "wake"): the subscriber listens to them all
// from the start, before it knows how many shards the prefix has.
// Channels are not keys: on Cluster a publication reaches every node.
func (s *Store) wakeChannels() []string {
	out := make([]string, len(s.bases))
	for i := range s.bases {
		out[i] = s.shard(i).wake()
	}
	return out
}

// shard returns the keys of shard i.
func (s *Store) shard(i int) keys { return keys{base: s.bases[i]} }

// msgKeys returns the keys of the shard that holds message id.
func (s *Store) msgKeys(n int, id string) keys {
	return s.shard(shardOfGroup(groupOfMessage(id), n))
}

// shards returns the number of shards of the prefix, choosing the layout
// at the first call that reaches Redis (see layoutScript); it is then
// fixed for the life of the store.
func (s *Store) shards(ctx context.Context) (int, error) {
	if n := s.nshards.Load(); n > 0 {
		return int(n), nil
	}
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	if n := s.nshards.Load(); n > 0 {
		return int(n), nil
	}
	want := 1
	if s.ropts.shards > 0 {
		want = s.ropts.shards
	} else if s.ropts.topology == Cluster {
		want = clusterShards
	}
	seen := "0"
	if want > 1 {
		// A lost layout mark must not turn a sharded prefix into a
		// one-slot one: shards that hold data say it was sharded.
		for i := 1; i < want && seen == "0"; i++ {
			n, err := s.client.Exists(ctx, s.shard(i).dedupe(), s.shard(i).messages()).Result()
			if err != nil {
				return 0, wrap("layout", err)
			}
			if n > 0 {
				seen = "1"
			}
		}
	}
	args := layoutArgs{B: s.k.base, Want: want, Seen: seen, Nprio: len(priorities)}
	n, err := layoutScript.Run(ctx, s.client, []string{s.k.layoutKey()}, args.argv()...).Int()
	if err != nil {
		return 0, wrap("layout", err)
	}
	if n < 1 {
		return 0, fmt.Errorf("redis layout: %s holds %d shards", s.k.layoutKey(), n)
	}
	s.nshards.Store(int32(n))
	return n, nil
}

// layoutScript: KEYS[1] = the layout mark; want the shards wanted, seen
// whether shards already hold data ('1'/'0'). Returns the number of shards
// of the prefix: the recorded one, else the wanted one, except that a home
// slot holding pushes of the one-tag layout (and no shard holding any)
// keeps one shard. Only keys that shards hold count: links, invites and
// the installation secret live in the home slot in both layouts, and every
// method that writes the others chooses the layout first. The mark never
// expires.
var layoutScript = script(luaLayoutArgs, `
local v = redis.call('GET', KEYS[1])
if v then return tonumber(v) end
local n = want
if seen ~= '1' then
  local held = {'dd', 'ms', 'hk', 'hseq'}
  for p = 0, tonumber(nprio) - 1 do table.insert(held, 'q:' .. p) end
  for _, k in ipairs(held) do
    if redis.call('EXISTS', B .. k) == 1 then n = '1' break end
  end
end
redis.call('SET', KEYS[1], n)
return tonumber(n)
`)

// forShards runs fn for every shard i of n in one pipeline (one per
// primary on Cluster); fn queues its commands on p. A command's "no
// value" reply is not an error.
func (s *Store) forShards(ctx context.Context, n int, fn func(p goredis.Pipeliner, i int, k keys)) error {
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range n {
			fn(p, i, s.shard(i))
		}
		return nil
	})
	if err != nil && !isRedisNil(err) {
		return err
	}
	return nil
}

// hotScripts are the scripts of every push and every job: the store loads
// them into the server's script cache when it starts, so that the first
// push is one EVALSHA rather than a NOSCRIPT answer and a second round
// trip carrying the whole script (go-redis's Script.Run falls back to
// EVAL only for a server that lost its cache since).
var hotScripts = []*goredis.Script{
	ingestScript, claimScript, completeScript, completeMessageScript, retryScript, enqueueScript, nextDueScript,
}

// loadScripts loads hotScripts (on Cluster into every primary), in the
// background of New: a server that is away gets them with the first run.
func (s *Store) loadScripts(ctx context.Context) {
	for _, sc := range hotScripts {
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			s.log.Debug("redis scripts not preloaded", "err", err)
			return
		}
	}
}

// scriptCall is one run of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// evalAll runs script once per call in one pipeline and returns the
// replies in order. The calls a server refused for a lost script cache (a
// restart, a failover; on Cluster one node may have it and another not)
// are sent again with the whole script, and only those: the others ran.
// The first error other than a "no value" reply is returned, wrapped as
// op.
func (s *Store) evalAll(ctx context.Context, op string, script *goredis.Script, calls []scriptCall) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, len(calls))
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	for _, cached := range []bool{true, false} {
		_, _ = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, i := range todo {
				c := calls[i]
				if cached {
					cmds[i] = script.EvalSha(ctx, p, c.keys, c.args...)
				} else {
					cmds[i] = script.Eval(ctx, p, c.keys, c.args...)
				}
			}
			return nil
		})
		lost := todo[:0]
		for _, i := range todo {
			if err := cmds[i].Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
				lost = append(lost, i)
			}
		}
		if todo = lost; len(todo) == 0 {
			break
		}
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !isRedisNil(err) {
			return nil, wrap(op, err)
		}
	}
	return cmds, nil
}
