package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// backupBytesTrailer carries the size of a snapshot served over HTTP after
// its body: the client compares it with what it received, since a server
// failing mid-stream would otherwise end the chunked body cleanly.
const backupBytesTrailer = "X-Otpbot-Backup-Bytes"

// cmdBackup writes a consistent snapshot of the embedded store. When no
// server holds the file it is read directly (read-only); while serve runs,
// bbolt's lock keeps other processes out, so the snapshot is fetched from
// that server's /admin/backup on this host instead (http.admin_listen,
// else http.listen).
func cmdBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configFlag := newFlags("backup", stderr)
	out := fs.String("o", "", "write the snapshot to this file (atomically) instead of stdout")
	base := fs.String("url", "", "base URL of the running otpbot; default http:// + http.admin_listen, else http.listen")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadFromFlags(*configFlag, getenv)
	if err != nil {
		return err
	}
	if cfg.Store.Driver != "embedded" {
		return errors.New("backup: store.driver is redis: back Redis up with its own persistence (RDB snapshots, AOF); " +
			"`otpbot migrate --from redis --to embedded` also writes an embedded copy")
	}
	write := func(w io.Writer) (int64, string, error) {
		db, err := probeEmbedded(cfg.Store.Path)
		switch {
		case err == nil:
			defer db.Close()
			var n int64
			err := db.View(func(tx *bbolt.Tx) error {
				var err error
				n, err = tx.WriteTo(w)
				return err
			})
			return n, "read " + cfg.Store.Path + " directly", err
		case errors.Is(err, errStoreInUse):
			url := adminURL(&cfg, *base) + backupPath
			n, err := fetchBackup(ctx, url, adminToken(cfg.Telegram.Token), w)
			return n, "fetched from the running server at " + url, err
		default:
			return 0, "", err
		}
	}
	if *out == "" {
		if err := guardStdout(stdout, stderr); err != nil {
			return err
		}
		n, how, err := write(stdout)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		fmt.Fprintf(stderr, "backup: %d bytes, %s\n", n, how)
		return nil
	}
	// Write next to the target and rename, so a failed backup never
	// replaces a good one. CreateTemp makes the file 0600: the snapshot
	// holds live codes, links and history.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".otpbot-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, how, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stderr, "backup: %d bytes written to %s, %s\n", n, *out, how)
	return nil
}

// guardStdout refuses to write the snapshot to a terminal, and keeps a
// file stdout was redirected to (`otpbot backup > file`: the shell created
// it with its umask, usually 0644) from being readable by others.
//
// A terminal is recognised as a character device: the standard library
// cannot ask for a terminal as such, and no other character device is a
// sensible place for a store snapshot (a tape is written with -o, or
// through a pipe), except the null device, which is let through
// (`otpbot backup > /dev/null` checks that a snapshot can be taken). A pipe
// is the reader's business: otpbot cannot tell who reads it.
func guardStdout(stdout, stderr io.Writer) error {
	f, ok := stdout.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: stdout: %w", err)
	}
	mode := fi.Mode()
	switch {
	case mode&os.ModeCharDevice != 0 && !isNullDevice(fi):
		return &usageError{"backup: stdout is a terminal; write the snapshot to a file with -o FILE (created 0600)"}
	case mode.IsRegular() && mode.Perm()&0o077 != 0:
		perm := mode.Perm() &^ 0o077
		if err := f.Chmod(perm); err != nil {
			return &usageError{fmt.Sprintf("backup: stdout is a file others can read (%#o) and its mode cannot be changed (%v); "+
				"write the snapshot with -o FILE (created 0600)", mode.Perm(), errors.Unwrap(err))}
		}
		fmt.Fprintf(stderr, "backup: stdout was readable by group or others (%#o); it is now %#o\n", mode.Perm(), perm)
	}
	return nil
}

// isNullDevice reports whether fi is os.DevNull.
func isNullDevice(fi os.FileInfo) bool {
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// adminURL is where the running otpbot serves /admin/backup: flagValue
// when set, else http.admin_listen, else http.listen.
func adminURL(cfg *Config, flagValue string) string {
	if flagValue == "" && cfg.HTTP.AdminListen != "" {
		return listenURL(cfg.HTTP.AdminListen)
	}
	return baseURL(cfg, flagValue)
}

// fetchBackup streams the running server's snapshot to w.
func fetchBackup(ctx context.Context, url, token string, w io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the store file is in use and the running server cannot be reached (%w); "+
			"are http.admin_listen and http.listen right, or pass -url", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s (the endpoint answers only this host, with http.admin_backup: true)", url, resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", url, err)
	}
	if want := resp.Trailer.Get(backupBytesTrailer); want != strconv.FormatInt(n, 10) {
		return n, fmt.Errorf("GET %s: snapshot incomplete (%d bytes received, server reported %q)", url, n, want)
	}
	return n, nil
}
