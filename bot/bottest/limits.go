package bottest

import (
	"strconv"
	"time"
)

// WithLimits makes the server enforce Telegram's flood limits on sends and
// edits: at most globalPerSec calls per second overall and perChatPerSec
// per chat (0 = no limit). Beyond them it answers 429 with retry_after and,
// like Telegram, keeps answering 429 in that scope until the wait is over.
func WithLimits(globalPerSec, perChatPerSec int) Option {
	return func(s *Server) { s.globalLimit, s.chatLimit = globalPerSec, perChatPerSec }
}

// SetLimits changes the flood limits of WithLimits while the server runs
// (0 = no limit), e.g. after a test has set the scene without them.
func (s *Server) SetLimits(globalPerSec, perChatPerSec int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.globalLimit, s.chatLimit = globalPerSec, perChatPerSec
}

// flood applies the configured limits to a call in chat c; s.mu must be held.
func (s *Server) flood(c *chat) *apiError {
	now := time.Now()
	if s.globalLimit > 0 {
		if now.Before(s.globalUntil) {
			return tooMany(s.globalUntil.Sub(now))
		}
		s.globalHits = trim(s.globalHits, now)
		if len(s.globalHits) >= s.globalLimit {
			s.globalUntil = s.globalHits[0].Add(time.Second)
			return tooMany(s.globalUntil.Sub(now))
		}
	}
	if s.chatLimit > 0 {
		if now.Before(c.until) {
			return tooMany(c.until.Sub(now))
		}
		c.hits = trim(c.hits, now)
		if len(c.hits) >= s.chatLimit {
			c.until = c.hits[0].Add(time.Second)
			return tooMany(c.until.Sub(now))
		}
	}
	if s.globalLimit > 0 {
		s.globalHits = append(s.globalHits, now)
	}
	if s.chatLimit > 0 {
		c.hits = append(c.hits, now)
	}
	return nil
}

// trim drops hits older than a second.
func trim(hits []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(hits) && now.Sub(hits[i]) >= time.Second {
		i++
	}
	return hits[i:]
}

func tooMany(wait time.Duration) *apiError {
	secs := int((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &apiError{code: 429, desc: "Too Many Requests: retry after " + strconv.Itoa(secs), retryAfter: secs}
}
