package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/store/redis"
)

// benchStoreOptions mirror what serve passes to the store.
func benchStoreOptions() otpbot.StoreOptions {
	return otpbot.StoreOptions{DedupeWindow: 72 * time.Hour, HistoryPerKey: 1000, HistoryRetention: 720 * time.Hour}
}

// linkPlan is a bench card and the chat it is linked to.
type linkPlan struct {
	Card string
	Chat int64
}

// prepopulate links the planned cards to their chats before otpbot starts,
// through the store packages themselves (what /link card ID would write),
// since linking thousands of chats through bot commands would measure the
// command path instead.
func prepopulate(ctx context.Context, spec storeSpec, plan []linkPlan) error {
	now := time.Now()
	links := make([]otpbot.Link, len(plan))
	for i, p := range plan {
		links[i] = otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: p.Card},
			Target: otpbot.Target{ChatID: p.Chat}, CreatedAt: now, CreatedBy: 1}
	}
	switch spec.Driver {
	case "embedded":
		s, err := bolt.Open(spec.Path, benchStoreOptions(), nil)
		if err != nil {
			return fmt.Errorf("prepopulate: %w", err)
		}
		recs := make([]otpbot.Record, len(links))
		for i := range links {
			recs[i] = otpbot.Record{Link: &links[i]}
		}
		err = s.Import(ctx, recs)
		return errors.Join(err, s.Close())
	case "redis":
		client := benchRedisClient(spec)
		defer client.Close()
		s, err := redis.New(ctx, client, spec.Prefix, benchStoreOptions(), nil)
		if err != nil {
			return fmt.Errorf("prepopulate: %w", err)
		}
		defer s.Close()
		// One link per call, many at once: a round trip each, overlapped.
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		next := make(chan otpbot.Link)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for l := range next {
					if err := s.Link(ctx, l); err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}
			}()
		}
		for _, l := range links {
			next <- l
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errs:
			return fmt.Errorf("prepopulate: %w", err)
		default:
		}
		return nil
	}
	return fmt.Errorf("prepopulate: unknown driver %q", spec.Driver)
}

// cleanRedis deletes every key under prefix (never anything else: no
// FLUSHDB), returning how many went.
func cleanRedis(ctx context.Context, addr, prefix string) (int, error) {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	defer client.Close()
	deleted := 0
	var cursor uint64
	for {
		keys, next, err := client.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return deleted, fmt.Errorf("clean redis: %w", err)
		}
		if len(keys) > 0 {
			if err := client.Unlink(ctx, keys...).Err(); err != nil {
				return deleted, fmt.Errorf("clean redis: %w", err)
			}
			deleted += len(keys)
		}
		if cursor = next; cursor == 0 {
			return deleted, nil
		}
	}
}
