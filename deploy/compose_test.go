package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The compose file, as far as we use the Compose specification. Decoding is
// strict (unknown fields are errors), so a misspelt key such as "depend_on"
// fails here instead of being ignored by Compose at deploy time; a new,
// correctly spelt key needs a field below.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Configs  map[string]struct {
		File    string `yaml:"file"`
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string            `yaml:"context"`
		Dockerfile string            `yaml:"dockerfile"`
		Args       map[string]string `yaml:"args"`
	} `yaml:"build"`
	Command   []string `yaml:"command"`
	Restart   string   `yaml:"restart"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
		Restart   bool   `yaml:"restart"`
	} `yaml:"depends_on"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     []struct {
		Path     string `yaml:"path"`
		Required bool   `yaml:"required"`
	} `yaml:"env_file"`
	Configs []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
	Volumes         []string `yaml:"volumes"`
	Ports           []string `yaml:"ports"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Healthcheck     *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

func parseCompose(src string) (*composeFile, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("compose.yaml: %w", err)
	}
	return &c, nil
}

// secretWords mark OTPBOT_ variables that hold secrets; their values belong
// in the env file, never written into compose.yaml.
var secretWords = []string{"TOKEN", "SECRET", "PASSWORD", "KEY"}

// checkCompose holds the compose file to its purpose: otpbot on Redis, started
// only once Redis answers, both restarted by Docker, data on named volumes,
// and secrets kept out of the file. image is the final stage of the
// Dockerfile (what the otpbot service runs).
func checkCompose(c *composeFile, image stageFacts, shutdown time.Duration) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	redis, ok := c.Services["redis"]
	if !ok {
		return append(errs, fmt.Errorf("no redis service"))
	}
	bot, ok := c.Services["otpbot"]
	if !ok {
		return append(errs, fmt.Errorf("no otpbot service"))
	}

	// Redis.
	if repo, tag, _ := strings.Cut(redis.Image, ":"); repo != "redis" || tag == "" || tag == "latest" {
		fail("redis image %q: want the official image with a pinned tag", redis.Image)
	}
	if redis.Healthcheck == nil || len(redis.Healthcheck.Test) < 2 || !strings.Contains(strings.Join(redis.Healthcheck.Test, " "), "redis-cli ping") {
		fail("redis has no healthcheck running redis-cli ping, so service_healthy can never be known")
	}
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") {
		fail("redis runs without --appendonly yes: acknowledged pushes would not survive a Redis restart")
	}
	if !hasVolumeAt(redis.Volumes, "/data") {
		fail("redis keeps /data on no volume: its data dies with the container")
	}
	if len(redis.Ports) > 0 {
		fail("redis publishes ports %v; only otpbot needs it, over the compose network", redis.Ports)
	}

	// otpbot.
	if dep, ok := bot.DependsOn["redis"]; !ok || dep.Condition != "service_healthy" {
		fail("otpbot does not depend on redis with condition: service_healthy")
	}
	if got := bot.Environment["OTPBOT_STORE_DRIVER"]; got != "redis" {
		fail("OTPBOT_STORE_DRIVER=%q, want redis", got)
	}
	if host, _, err := net.SplitHostPort(bot.Environment["OTPBOT_STORE_REDIS_ADDR"]); err != nil || c.Services[host].Image == "" {
		fail("OTPBOT_STORE_REDIS_ADDR=%q does not name a compose service host:port", bot.Environment["OTPBOT_STORE_REDIS_ADDR"])
	}
	for k, v := range bot.Environment {
		for _, w := range secretWords {
			if strings.Contains(k, w) && v != "" && !strings.HasPrefix(v, "${") {
				fail("%s is written into compose.yaml; secrets go in the env file", k)
			}
		}
	}
	listen := bot.Environment["OTPBOT_HTTP_LISTEN"]
	if listen == "" {
		listen = image.env["OTPBOT_HTTP_LISTEN"]
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
		fail("otpbot listens on %q inside the container; a published port needs all interfaces (\":8080\")", listen)
	}
	published := false
	for _, p := range bot.Ports {
		if strings.HasSuffix(p, ":"+port) {
			published = true
		}
	}
	if !published {
		fail("no published port reaches otpbot's listener :%s (ports %v)", port, bot.Ports)
	}
	for _, s := range []struct {
		name string
		svc  composeService
	}{{"redis", redis}, {"otpbot", bot}} {
		switch s.svc.Restart {
		case "always", "unless-stopped", "on-failure":
		default:
			fail("%s restart policy %q: want unless-stopped (or always/on-failure)", s.name, s.svc.Restart)
		}
		for _, v := range s.svc.Volumes {
			name, _, _ := strings.Cut(v, ":")
			if _, ok := c.Volumes[name]; !ok && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "/") {
				fail("%s mounts volume %q, which the top-level volumes do not declare", s.name, name)
			}
		}
	}
	if d, err := time.ParseDuration(bot.StopGracePeriod); err != nil || d <= shutdown {
		fail("otpbot stop_grace_period %q does not exceed shutdown_timeout %v: Docker would SIGKILL it mid-drain", bot.StopGracePeriod, shutdown)
	}
	for _, cf := range bot.Configs {
		if _, ok := c.Configs[cf.Source]; !ok {
			fail("otpbot uses config %q, which the top-level configs do not declare", cf.Source)
		}
		if cf.Target != bot.Environment["OTPBOT_CONFIG"] {
			fail("config mounted at %q but OTPBOT_CONFIG=%q", cf.Target, bot.Environment["OTPBOT_CONFIG"])
		}
	}
	if image.user == "" {
		fail("the image runs as root")
	}
	if hc := bot.Healthcheck; hc != nil {
		switch {
		case len(hc.Test) < 2 || hc.Test[0] != "CMD":
			fail("otpbot healthcheck %v: want exec form [\"CMD\", ...]; the image has no shell", hc.Test)
		case image.copies[hc.Test[1]] == "":
			fail("otpbot healthcheck runs %s, which the image does not contain", hc.Test[1])
		}
	} else if image.health == nil {
		fail("otpbot has no healthcheck, in compose or in the image")
	}
	return errs
}

func hasVolumeAt(volumes []string, target string) bool {
	for _, v := range volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == target {
			return true
		}
	}
	return false
}

// imageFacts is the final stage of the repository's Dockerfile.
func imageFacts(t *testing.T) stageFacts {
	t.Helper()
	df, err := parseDockerfile(readRepoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return factsOf(df.Stages[len(df.Stages)-1])
}

func TestCompose(t *testing.T) {
	c, err := parseCompose(readRepoFile(t, "deploy/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reportErrors(t, "compose.yaml", checkCompose(c, imageFacts(t), shutdownTimeout(t)))

	// The build context is the repository, whose Dockerfile builds the image.
	bot := c.Services["otpbot"]
	if bot.Build == nil {
		t.Fatal("otpbot has no build section")
	}
	ctx := filepath.Join(repoRoot(t), "deploy", filepath.FromSlash(bot.Build.Context))
	if filepath.Clean(ctx) != repoRoot(t) {
		t.Errorf("build context %q is %s, want the repository root", bot.Build.Context, ctx)
	}
	df := bot.Build.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if _, err := parseDockerfile(readRepoFile(t, df)); err != nil {
		t.Errorf("build.dockerfile %s: %v", df, err)
	}
	if _, ok := bot.Build.Args["VERSION"]; !ok {
		t.Error("build.args has no VERSION: the image would say it is version dev")
	}
}

// TestComposeChecksCatchMistakes breaks the real compose file one way at a
// time and wants the checks to name each break.
func TestComposeChecksCatchMistakes(t *testing.T) {
	src := readRepoFile(t, "deploy/compose.yaml")
	tests := []struct {
		name, old, new, want string
	}{
		{"started before redis is ready", "condition: service_healthy", "condition: service_started", "service_healthy"},
		{"embedded store", "OTPBOT_STORE_DRIVER: redis", "OTPBOT_STORE_DRIVER: embedded", "OTPBOT_STORE_DRIVER"},
		{"wrong redis host", "OTPBOT_STORE_REDIS_ADDR: redis:6379", "OTPBOT_STORE_REDIS_ADDR: 127.0.0.1:6379", "OTPBOT_STORE_REDIS_ADDR"},
		{"no redis healthcheck", `test: ["CMD-SHELL", "redis-cli ping | grep -q PONG"]`, `test: ["CMD", "true"]`, "redis-cli ping"},
		{"unpinned redis", "image: redis:7.4-alpine", "image: redis:latest", "pinned tag"},
		{"no AOF", `"--appendonly", "yes"`, `"--appendonly", "no"`, "appendonly"},
		{"token in file", "OTPBOT_STORE_DRIVER: redis", "OTPBOT_STORE_DRIVER: redis\n      OTPBOT_TELEGRAM_TOKEN: \"123:abc\"", "OTPBOT_TELEGRAM_TOKEN"},
		{"loopback listener", `OTPBOT_HTTP_LISTEN: ":8080"`, `OTPBOT_HTTP_LISTEN: "127.0.0.1:8080"`, "all interfaces"},
		{"unpublished", `"127.0.0.1:8080:8080"`, `"127.0.0.1:8080:9090"`, "published port"},
		{"no restart", "restart: unless-stopped\n    depends_on", "restart: \"no\"\n    depends_on", "restart policy"},
		{"undeclared volume", "  otpbot-data:\n", "", "do not declare"},
		{"short grace", "stop_grace_period: 20s", "stop_grace_period: 10s", "mid-drain"},
		{"healthcheck binary missing", `test: ["CMD", "/healthcheck"]`, `test: ["CMD", "/usr/bin/curl"]`, "does not contain"},
		{"config elsewhere", "target: /etc/otpbot/config.yaml", "target: /config.yaml", "OTPBOT_CONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("compose.yaml no longer contains %q; update this mutation", tt.old)
			}
			c, err := parseCompose(strings.Replace(src, tt.old, tt.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			wantErrorMentioning(t, checkCompose(c, imageFacts(t), contractShutdownTimeout), tt.want)
		})
	}
	t.Run("misspelt key", func(t *testing.T) {
		_, err := parseCompose(strings.Replace(src, "depends_on:", "depend_on:", 1))
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("depend_on")) {
			t.Errorf("parseCompose accepted depend_on (err %v)", err)
		}
	})
}
