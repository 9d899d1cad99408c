package bot

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// /history: the events of this chat's cards and customers, of any key for
// an admin, and for an admin the events of every kind (/history events),
// those that name no card or customer too.

// eventsWord is the /history argument that lists every event
// (otpbot.EventsKey); "/history card events" still names a card "events".
const eventsWord = "events"

// historyArgs is a parsed "/history [card|customer] [ID] [N]" or
// "/history events [N]".
type historyArgs struct {
	id     string
	types  []otpbot.KeyType // the key types ID may name, most specific first
	n      int
	events bool // every event: otpbot.EventsKey
}

// parseHistory reads /history's arguments. A lone argument of at most three
// digits is N (no card id or customer number is that short); anything else
// is the ID. "card"/"customer" may precede the ID, as in /link; "events"
// alone (then N) asks for every event.
func parseHistory(args []string) (historyArgs, bool) {
	h := historyArgs{types: []otpbot.KeyType{otpbot.KeyCard, otpbot.KeyCustomer}, n: historyDefault}
	isN := func(s string) bool {
		if len(s) > 3 {
			return false
		}
		_, err := strconv.Atoi(s)
		return err == nil
	}
	if len(args) > 0 && strings.EqualFold(args[0], eventsWord) && (len(args) == 1 || len(args) == 2 && isN(args[1])) {
		h.events = true
		if len(args) == 2 {
			h.n, _ = strconv.Atoi(args[1])
		}
		if h.n < 1 {
			return h, false
		}
		h.n = min(h.n, historyMax)
		return h, true
	}
	if len(args) > 0 {
		if t := otpbot.KeyType(strings.ToLower(args[0])); t == otpbot.KeyCard || t == otpbot.KeyCustomer {
			if len(args) < 2 {
				return h, false
			}
			h.types, args = []otpbot.KeyType{t}, args[1:]
		}
	}
	switch {
	case len(args) == 0:
	case len(args) == 1 && isN(args[0]) && len(h.types) == 2:
		h.n, _ = strconv.Atoi(args[0])
	case len(args) == 1:
		h.id = args[0]
	case len(args) == 2:
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return h, false
		}
		h.id, h.n = args[0], n
	default:
		return h, false
	}
	if h.n < 1 || (h.id != "" && !validID(h.id)) {
		return h, false
	}
	h.n = min(h.n, historyMax)
	return h, true
}

func (c *Commands) history(ctx context.Context, r *request) error {
	h, ok := parseHistory(r.args)
	if !ok {
		return c.usage(ctx, r, historyHelp)
	}
	links, err := c.chatLinks(ctx, r)
	if err != nil {
		return err
	}
	if h.events {
		if !r.admin {
			return c.refuse(ctx, r, templates.RefusedAdmin) // every card's events: admins only
		}
		entries, err := c.store.History(ctx, otpbot.EventsKey, h.n)
		if err != nil {
			return fmt.Errorf("history of every event: %w", err)
		}
		return c.historyPages(ctx, r, otpbot.EventsKey, entries, links)
	}
	var keys []otpbot.Key
	switch {
	case h.id == "":
		// The keys of this chat; an admin in an unlinked chat must name one.
		keys = linkedKeys(links, nil)
		if len(keys) == 0 {
			return c.usage(ctx, r, historyHelp)
		}
	default:
		keys = linkedKeys(links, func(k otpbot.Key) bool { return k.ID == h.id && slices.Contains(h.types, k.Type) })
		if len(keys) > 1 {
			keys = keys[:1] // a card and a customer with the same id: the card
		}
		if len(keys) == 0 && !r.admin {
			// Not this chat's key: say nothing about whether it exists.
			if looksLikePAN(h.id) {
				return c.cardNumber(ctx, r, "")
			}
			return c.refuse(ctx, r, templates.RefusedKey)
		}
	}
	if len(keys) == 0 {
		return c.anyKeyHistory(ctx, r, h, links)
	}
	entries, err := c.mergedHistory(ctx, keys, h.n)
	if err != nil {
		return err
	}
	var shown otpbot.Key
	if len(keys) == 1 {
		shown = keys[0]
	}
	return c.historyPages(ctx, r, shown, entries, links)
}

// anyKeyHistory answers an admin asking for a key this chat is not linked
// to: the card if it has history, else the customer.
func (c *Commands) anyKeyHistory(ctx context.Context, r *request, h historyArgs, links []otpbot.Link) error {
	var entries []otpbot.HistoryEntry
	var shown otpbot.Key
	for _, t := range h.types {
		k := otpbot.Key{Type: t, ID: h.id}
		if shown.ID == "" {
			shown = k
		}
		var err error
		if entries, err = c.store.History(ctx, k, h.n); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if len(entries) > 0 {
			shown = k
			break
		}
	}
	// A card number is no key; one of the platform's ids that merely
	// looks like one has history, and is shown.
	if len(entries) == 0 && looksLikePAN(h.id) {
		return c.cardNumber(ctx, r, "")
	}
	return c.historyPages(ctx, r, shown, entries, links)
}

// historyPages sends entries (newest first) over as many messages as they
// need, each card named as this chat's links name it.
func (c *Commands) historyPages(ctx context.Context, r *request, shown otpbot.Key, entries []otpbot.HistoryEntry, links []otpbot.Link) error {
	for i := range entries {
		entries[i].Event = entries[i].Event.Redacted() // never a code, whatever the store holds
	}
	names := cardNames(links, r.target)
	return c.okPages(ctx, r, "history", len(entries), func(from, to, part, parts int) any {
		return templates.HistoryView{Key: shown, Entries: entries[from:to], Part: part, Parts: parts, Names: names}
	})
}

// cardNames maps card ids to the names this chat's links give them
// (/link card ID NAME); the link of the topic the command came from wins
// over another topic's.
func cardNames(links []otpbot.Link, here otpbot.Target) map[string]string {
	names := map[string]string{}
	for _, l := range links {
		if l.Key.Type != otpbot.KeyCard || l.Name == "" {
			continue
		}
		if _, ok := names[l.Key.ID]; !ok || l.Target == here {
			names[l.Key.ID] = l.Name
		}
	}
	return names
}

// linkedKeys returns the distinct keys of links that keep accepts (all when
// keep is nil), cards first.
func linkedKeys(links []otpbot.Link, keep func(otpbot.Key) bool) []otpbot.Key {
	var keys []otpbot.Key
	for _, l := range links {
		if (keep == nil || keep(l.Key)) && !slices.Contains(keys, l.Key) {
			keys = append(keys, l.Key)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if keys[i].Type != keys[j].Type {
			return keys[i].Type == otpbot.KeyCard
		}
		return keys[i].ID < keys[j].ID
	})
	return keys
}

// mergedHistory returns the newest n entries over keys. An event filed
// under both its card and its customer is listed once.
func (c *Commands) mergedHistory(ctx context.Context, keys []otpbot.Key, n int) ([]otpbot.HistoryEntry, error) {
	var all []otpbot.HistoryEntry
	seen := map[string]bool{}
	for _, k := range keys {
		entries, err := c.store.History(ctx, k, n)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		for _, e := range entries {
			if e.Event.ID != "" && seen[e.Event.ID] {
				continue
			}
			seen[e.Event.ID] = true
			all = append(all, e)
		}
	}
	if len(keys) > 1 {
		sort.SliceStable(all, func(i, j int) bool { return all[i].Event.ReceivedAt.After(all[j].Event.ReceivedAt) })
	}
	if len(all) > n {
		all = all[:n]
	}
	return all, nil
}
