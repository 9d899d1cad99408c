package bot

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// memStore is a stand-in for the embedded store until store/bolt lands:
// just the methods the command tests use, with the store contract's
// semantics (atomic invite redemption, UpdateMessage's version check,
// leases, Once). TEMPORARY: replaced by bolt.Open on t.TempDir().
type memStore struct {
	mu       sync.Mutex
	now      func() time.Time
	links    []otpbot.Link
	history  map[string][]otpbot.HistoryEntry // newest last
	messages map[string]otpbot.Message
	tasks    map[string]otpbot.Task
	invites  map[string]otpbot.Invite
	once     map[string]time.Time
	leases   map[string]lease
}

type lease struct {
	owner string
	until time.Time
}

func openMemStore(t *testing.T, now func() time.Time) *memStore {
	return &memStore{now: now, history: map[string][]otpbot.HistoryEntry{}, messages: map[string]otpbot.Message{},
		tasks: map[string]otpbot.Task{}, invites: map[string]otpbot.Invite{}, once: map[string]time.Time{}, leases: map[string]lease{}}
}

func (s *memStore) Ingest(_ context.Context, ev otpbot.Event) (otpbot.IngestResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := otpbot.IngestResult{Outcome: otpbot.OutcomeRecorded}
	if ev.Kind.Pushed() {
		res.Outcome = otpbot.OutcomeUnrouted
		if key, ok := ev.RouteKey(); ok {
			for _, l := range s.links {
				if l.Key != key || l.Broken {
					continue
				}
				id := otpbot.MessageKey(ev.Group, l.Target)
				s.messages[id] = otpbot.Message{ID: id, Group: ev.Group, Target: l.Target, Event: ev, State: otpbot.StateLive, UpdatedAt: s.now()}
				tid := otpbot.TaskID(id, otpbot.TaskSend)
				s.tasks[tid] = otpbot.Task{ID: tid, Kind: otpbot.TaskSend, MessageID: id, Target: l.Target, Due: s.now()}
				res.Targets = append(res.Targets, l.Target)
				res.Outcome = otpbot.OutcomeQueued
			}
		}
	}
	for _, k := range ev.Keys() {
		s.history[k.String()] = append(s.history[k.String()], otpbot.HistoryEntry{Event: ev.Redacted(), Outcome: res.Outcome})
	}
	return res, nil
}

func (s *memStore) Link(_ context.Context, l otpbot.Link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.links {
		if x.Key == l.Key && x.Target == l.Target {
			s.links[i] = l
			return nil
		}
	}
	s.links = append(s.links, l)
	return nil
}

func (s *memStore) Unlink(_ context.Context, key otpbot.Key, target otpbot.Target) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.links {
		if x.Key == key && x.Target == target {
			s.links = append(s.links[:i], s.links[i+1:]...)
			return true, nil
		}
	}
	return false, nil
}

func (s *memStore) LinksForKey(_ context.Context, key otpbot.Key) ([]otpbot.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []otpbot.Link
	for _, x := range s.links {
		if x.Key == key {
			out = append(out, x)
		}
	}
	return out, nil
}

func (s *memStore) LinksForChat(_ context.Context, chatID int64) ([]otpbot.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []otpbot.Link
	for _, x := range s.links {
		if x.Target.ChatID == chatID {
			out = append(out, x)
		}
	}
	return out, nil
}

func (s *memStore) History(_ context.Context, key otpbot.Key, limit int) ([]otpbot.HistoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[key.String()]
	var out []otpbot.HistoryEntry
	for i := len(h) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, h[i])
	}
	return out, nil
}

func (s *memStore) Message(_ context.Context, id string) (otpbot.Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	return m, ok, nil
}

func (s *memStore) MessagesForChat(_ context.Context, chatID int64) ([]otpbot.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []otpbot.Message
	for _, m := range s.messages {
		if m.Target.ChatID == chatID {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *memStore) UpdateMessage(_ context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.messages[msg.ID]
	if !ok {
		return otpbot.ErrNotFound
	}
	if !cur.UpdatedAt.Equal(prev) {
		return otpbot.ErrConflict
	}
	if msg.State.Final() {
		msg.Event = msg.Event.Redacted()
	}
	s.messages[msg.ID] = msg
	for _, t := range next {
		s.tasks[t.ID] = t
	}
	return nil
}

func (s *memStore) Claim(_ context.Context, now time.Time, _ time.Duration, max int) ([]otpbot.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []otpbot.Job
	for _, t := range s.tasks {
		if t.Due.After(now) || len(jobs) == max {
			continue
		}
		j := otpbot.Job{Task: t, Lease: t.ID}
		if m, ok := s.messages[t.MessageID]; ok {
			j.Message = &m
		}
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Task.ID < jobs[j].Task.ID })
	return jobs, nil
}

func (s *memStore) Complete(_ context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tasks, job.Task.ID)
	if msg != nil {
		if msg.State.Final() {
			msg.Event = msg.Event.Redacted()
		}
		s.messages[msg.ID] = *msg
	}
	for _, t := range next {
		s.tasks[t.ID] = t
	}
	return nil
}

func (s *memStore) CreateInvite(_ context.Context, inv otpbot.Invite) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invites[inv.Hash] = inv
	return nil
}

func (s *memStore) RedeemInvite(_ context.Context, hash string, target otpbot.Target, now time.Time) (otpbot.Invite, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invites[hash]
	if !ok || !now.Before(inv.ExpiresAt) {
		return otpbot.Invite{}, otpbot.ErrNotFound
	}
	delete(s.invites, hash)
	s.links = append(s.links, otpbot.Link{Key: inv.Key, Target: target, CreatedAt: now})
	return inv, nil
}

func (s *memStore) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.once[key]; ok && time.Now().Before(until) {
		return false, nil
	}
	s.once[key] = time.Now().Add(ttl)
	return true, nil
}

func (s *memStore) AcquireLease(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[name]
	if ok && l.owner != owner && time.Now().Before(l.until) {
		return false, nil
	}
	s.leases[name] = lease{owner: owner, until: time.Now().Add(ttl)}
	return true, nil
}

func (s *memStore) ReleaseLease(_ context.Context, name, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[name].owner == owner {
		delete(s.leases, name)
	}
	return nil
}
