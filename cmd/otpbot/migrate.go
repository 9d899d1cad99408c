package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/otpbot/otpbot"
)

// migrateBatch is how many records go into one Import call.
const migrateBatch = 500

// errNotEmpty stops the emptiness probe of the target store.
var errNotEmpty = errors.New("not empty")

// cmdMigrate copies the whole store (links, history, pending deliveries,
// live messages, invites, dedupe marks) from one driver to the other, both
// as configured in the file. serve must be stopped while it runs.
func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configFlag := newFlags("migrate", stderr)
	from := fs.String("from", "", "source store: embedded or redis")
	to := fs.String("to", "", "target store: embedded or redis")
	force := fs.Bool("force", false, "import into a target that already holds data (records with the same ids are replaced)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, d := range []*string{from, to} {
		if *d != "embedded" && *d != "redis" {
			return &usageError{fmt.Sprintf("migrate: --from and --to must be embedded or redis (got %q)", *d)}
		}
	}
	if *from == *to {
		return &usageError{"migrate: --from and --to must differ"}
	}
	cfg, err := loadFromFlags(*configFlag, getenv)
	if err != nil {
		return err
	}
	// The embedded file must not be in use: a running serve would keep
	// changing what is being copied.
	if db, err := probeEmbedded(cfg.Store.Path); err == nil {
		_ = db.Close()
	} else if errors.Is(err, errStoreInUse) {
		return fmt.Errorf("migrate: %w: stop otpbot serve first", err)
	} else if *from == "embedded" {
		return fmt.Errorf("migrate: %w", err)
	}

	logger := commandLogger(&cfg, stderr)
	src, err := openStore(ctx, &cfg, *from, logger)
	if err != nil {
		return fmt.Errorf("migrate: source: %w", err)
	}
	defer src.Close()
	dst, err := openStore(ctx, &cfg, *to, logger)
	if err != nil {
		return fmt.Errorf("migrate: target: %w", err)
	}
	defer dst.Close()
	for _, s := range []*openedStore{src, dst} {
		if err := s.Ping(ctx); err != nil {
			return fmt.Errorf("migrate: %s: %w", s.describe, err)
		}
	}
	if !*force {
		// A target that only holds its installation secret (serve ran once
		// and received nothing) is empty: Import replaces a key while the
		// store has no dedupe marks.
		err := dst.Export(ctx, func(r otpbot.Record) error {
			if r.InstallationSecret != nil {
				return nil
			}
			return errNotEmpty
		})
		if errors.Is(err, errNotEmpty) {
			return fmt.Errorf("migrate: the target (%s) already holds data; use a fresh file or prefix, or -force to merge", dst.describe)
		}
		if err != nil {
			return fmt.Errorf("migrate: target: %w", err)
		}
	}
	counts, err := migrate(ctx, src, dst)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintf(stdout, "migrated %s → %s: %s\n", src.describe, dst.describe, counts)
	return nil
}

// recordCounts counts migrated records by type.
type recordCounts struct {
	links, history, messages, tasks, invites, dedupe int
	key                                              bool
}

func (c recordCounts) String() string {
	key := "no installation secret"
	if c.key {
		key = "the installation secret"
	}
	return fmt.Sprintf("%d links, %d history entries, %d messages, %d pending tasks, %d invites, %d dedupe marks, %s",
		c.links, c.history, c.messages, c.tasks, c.invites, c.dedupe, key)
}

func (c *recordCounts) add(r otpbot.Record) {
	switch {
	case r.Link != nil:
		c.links++
	case r.History != nil:
		c.history++
	case r.Message != nil:
		c.messages++
	case r.Task != nil:
		c.tasks++
	case r.Invite != nil:
		c.invites++
	case r.Dedupe != nil:
		c.dedupe++
	}
	if r.InstallationSecret != nil {
		c.key = true
	}
}

// migrate copies every record of src into dst, in Export's order, in
// batches.
func migrate(ctx context.Context, src, dst otpbot.Porter) (recordCounts, error) {
	var counts recordCounts
	batch := make([]otpbot.Record, 0, migrateBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.Import(ctx, batch); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	err := src.Export(ctx, func(r otpbot.Record) error {
		counts.add(r)
		batch = append(batch, r)
		if len(batch) == migrateBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return counts, fmt.Errorf("export: %w", err)
	}
	return counts, flush()
}
