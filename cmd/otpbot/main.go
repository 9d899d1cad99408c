// Command otpbot delivers 3-D Secure and one-time codes pushed by card
// platforms (UPay, HyperCard) to the Telegram chats linked to each card.
//
// Usage:
//
//	otpbot serve   -config FILE
//	otpbot check   -config FILE [-offline]
//	otpbot render  -config FILE -provider upay|hypercard [-file BODY.json]
//	otpbot sign    -config FILE -provider upay|hypercard [flags]
//	otpbot backup  -config FILE -o otpbot.db.bak
//	otpbot migrate -config FILE --from embedded --to redis
//	otpbot demo    [-listen 127.0.0.1:8080]
//	otpbot version
//
// -config may be omitted when OTPBOT_CONFIG names the file. A configuration
// error exits with status 2 and one line naming the key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	// The time zone database, compiled in: a minimal container has none,
	// and every chat may choose its own zone (/timezone).
	"syscall"
	_ "time/tzdata"

	"github.com/otpbot/otpbot/logs"
	"github.com/otpbot/otpbot/store/redis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, firstLine(err.Error()))
	}
	os.Exit(exitCode(err))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed at run time
	exitConfig  = 2 // a configuration or usage error, or a failed check
)

// usageError is a command-line mistake: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// checkError is a failed `otpbot check`: exit 2 (docs/contract.md#commands).
type checkError struct{ err error }

func (e *checkError) Error() string { return "check: " + e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// exitCode maps run's error to the process exit status.
func exitCode(err error) int {
	var ce *ConfigError
	var ue *usageError
	var ke *checkError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce), errors.As(err, &ue), errors.As(err, &ke):
		return exitConfig
	}
	return exitFailure
}

const usageText = `usage: otpbot <command> [flags]

commands:
  serve    -config FILE                      run the webhook server, the bot and the delivery workers
  check    -config FILE [-offline]           validate the configuration, reach the store and Telegram
  render   -config FILE -provider P [-file BODY.json]
                                             show the message(s) a push would produce (stdin by default)
  sign     -config FILE -provider P [flags]  print a curl command with a correctly signed sample push
  backup   -config FILE -o FILE              write a consistent snapshot of the embedded store (0600; stdout without -o)
  migrate  -config FILE --from S --to S      copy the whole store between embedded and redis
  demo     [-listen 127.0.0.1:8080]          try otpbot without Telegram: serve against fakes, a chat page at /demo
  version                                    print the version

-config may be omitted when OTPBOT_CONFIG names the file.
`

// run is the whole program behind main, callable from tests: it parses
// args (args[0] is the program name), reads the environment only through
// getenv, writes only to stdout and stderr, and returns when ctx is
// cancelled or the command is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usageText)
		return &usageError{"otpbot: a command is required"}
	}
	// go-redis logs through slog, never raw lines on stderr (a JSON log
	// stream would break exactly while Redis is away). Until a command has
	// read its configuration it logs warnings as text; commandLogger then
	// routes it to the configured logger.
	redis.SetLibraryLogger(logs.New(stderr, "warn", "text"))
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, getenv, stdout, stderr)
	case "render":
		return cmdRender(ctx, rest, getenv, stdout, stderr)
	case "sign":
		return cmdSign(ctx, rest, getenv, stdout, stderr)
	case "backup":
		return cmdBackup(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, getenv, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return nil
	}
	fmt.Fprint(stderr, usageText)
	return &usageError{fmt.Sprintf("otpbot: unknown command %q", cmd)}
}

// newFlags returns a flag set for a command with the -config flag every
// command that reads the configuration shares.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("otpbot "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "configuration file (default $OTPBOT_CONFIG)")
	return fs, config
}

// parseFlags parses a command's flags; a mistake is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &usageError{fs.Name() + ": help requested"}
		}
		return &usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// configPath returns -config, or OTPBOT_CONFIG when the flag is absent.
func configPath(flagValue string, getenv func(string) string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := strings.TrimSpace(getenv("OTPBOT_CONFIG")); p != "" {
		return p, nil
	}
	return "", &ConfigError{Msg: "no configuration file: pass -config FILE or set OTPBOT_CONFIG"}
}

// commandLogger is the logger of a command that read its configuration,
// with every configured secret redacted. go-redis logs through it too
// (redis.SetLibraryLogger: go-redis has one logger per process), so its
// lines have the configured format and level.
func commandLogger(cfg *Config, stderr io.Writer) *slog.Logger {
	logger := logs.New(stderr, cfg.Log.Level, cfg.Log.Format, secretsOf(cfg)...)
	redis.SetLibraryLogger(logger)
	return logger
}

// loadFromFlags resolves the configuration file and loads it.
func loadFromFlags(flagValue string, getenv func(string) string) (Config, error) {
	path, err := configPath(flagValue, getenv)
	if err != nil {
		return Config{}, err
	}
	return LoadConfig(path, getenv)
}
