package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/bolt"
)

// mode returns the permission bits of path.
func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// runTo runs otpbot with stdout going to f, as a shell redirection does.
func runTo(t *testing.T, f *os.File, args ...string) (string, error) {
	t.Helper()
	var errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"otpbot"}, args...), envMap(nil), f, &errOut)
	return errOut.String(), err
}

// TestBackupFilesAreOwnerOnly: the store file, a backup written with -o
// (new, or over an existing file others could read) and a file stdout was
// redirected to are readable by their owner only; a terminal gets no
// snapshot at all.
func TestBackupFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	cfgPath := testConfig(t, dir, bottest.New(t), "")
	cfg, err := LoadConfig(cfgPath, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	// The embedded store as serve opens it.
	s, err := openStore(context.Background(), &cfg, "embedded", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Link(context.Background(), otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}, Target: otpbot.Target{ChatID: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, cfg.Store.Path); m != 0o600 {
		t.Errorf("store file mode %#o, want 0600", m)
	}

	// -o, to a new file and over one others can read.
	fresh := filepath.Join(dir, "fresh.bak")
	over := writeFile(t, dir, "over.bak", "old backup")
	if err := os.Chmod(over, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fresh, over} {
		if _, _, err := runCmd(t, nil, "", "backup", "-config", cfgPath, "-o", out); err != nil {
			t.Fatalf("backup -o %s: %v", out, err)
		}
		if m := mode(t, out); m != 0o600 {
			t.Errorf("backup -o %s: mode %#o, want 0600", filepath.Base(out), m)
		}
	}

	// `otpbot backup > file`: the shell made the file 0644.
	redirected := filepath.Join(dir, "redirected.bak")
	f, err := os.OpenFile(redirected, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o644); err != nil { // whatever the test's umask
		t.Fatal(err)
	}
	errOut, err := runTo(t, f, "backup", "-config", cfgPath)
	f.Close()
	if err != nil {
		t.Fatalf("backup > file: %v", err)
	}
	if m := mode(t, redirected); m != 0o600 {
		t.Errorf("backup > file: mode %#o, want 0600", m)
	}
	if !strings.Contains(errOut, "now 0600") {
		t.Errorf("backup > file did not say it tightened the mode: %s", errOut)
	}
	for _, p := range []string{fresh, over, redirected} {
		b, err := bolt.Open(p, otpbot.StoreOptions{}, nil)
		if err != nil {
			t.Fatalf("%s is no store: %v", filepath.Base(p), err)
		}
		links, err := b.LinksForKey(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C1"})
		b.Close()
		if err != nil || len(links) != 1 {
			t.Errorf("%s: links %+v, %v", filepath.Base(p), links, err)
		}
	}

	// A terminal, like any character device but the null device, is
	// refused (exit 2) with a pointer to -o.
	dev, err := os.OpenFile("/dev/zero", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := runTo(t, dev, "backup", "-config", cfgPath); exitCode(err) != exitConfig || !strings.Contains(err.Error(), "-o FILE") {
		t.Errorf("backup to a character device: exit %d, %v", exitCode(err), err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if _, err := runTo(t, null, "backup", "-config", cfgPath); err != nil {
		t.Errorf("backup > /dev/null: %v", err)
	}
}
