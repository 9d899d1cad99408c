package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/otpbot/otpbot/bot/telegram"
)

// replyQueue sends the conversation's answers in the background, in order
// within a chat and concurrently across chats, so that handling an update
// never waits on Telegram: a hundred /link commands are all carried out at
// once, and their replies go out as fast as the rate budget allows. Each
// job gets a context that ends ReplyMaxAge after it was queued (or at
// Close), which bounds its retries (see Paced).
type replyQueue struct {
	log *slog.Logger
	now func() time.Time

	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// chats holds each chat's waiting jobs; a chat is in the map while a
	// goroutine drains it.
	chats  map[int64][]replyJob
	closed bool
}

type replyJob struct {
	queued time.Time
	run    func(ctx context.Context)
}

func newReplyQueue(logger *slog.Logger, now func() time.Time) *replyQueue {
	base, cancel := context.WithCancel(context.Background())
	return &replyQueue{log: logger, now: now, base: base, cancel: cancel, chats: map[int64][]replyJob{}}
}

// push queues run for chat, after the chat's earlier jobs.
func (q *replyQueue) push(chat int64, run func(ctx context.Context)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.log.Warn("telegram reply dropped: shutting down", "chat", chat)
		return
	}
	jobs, draining := q.chats[chat]
	q.chats[chat] = append(jobs, replyJob{queued: q.now(), run: run})
	if !draining {
		q.wg.Add(1)
		go q.drain(chat)
	}
}

// drain runs chat's jobs in order until none is left.
func (q *replyQueue) drain(chat int64) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		jobs := q.chats[chat]
		if len(jobs) == 0 {
			delete(q.chats, chat)
			q.mu.Unlock()
			return
		}
		job := jobs[0]
		q.chats[chat] = jobs[1:]
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(q.base, telegram.ReplyMaxAge-q.now().Sub(job.queued))
		job.run(ctx)
		cancel()
	}
}

// close stops taking jobs and waits for the queued ones until ctx ends;
// then the calls still running are cut off.
func (q *replyQueue) close(ctx context.Context) {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		q.cancel()
		<-done
	}
	q.cancel()
}
