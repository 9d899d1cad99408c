package deploy

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/redis/redistest"
)

// The Sentinel profile: its services by role.
var (
	sentinelData     = []string{"redis-primary", "redis-replica-1", "redis-replica-2"}
	sentinelServices = []string{"sentinel-1", "sentinel-2", "sentinel-3"}
	sentinelBots     = []string{"otpbot-1", "otpbot-2"}
)

// checkSentinelCompose holds compose.sentinel.yaml to its purpose: a primary
// and replicas with the append-only file, three sentinels with a quorum of
// two monitoring that primary, two otpbot instances that reach Redis
// through those sentinels only, with min_replicas_ack below the number of
// replicas (one must be left after a failover), and the habits of
// compose.yaml (restart policies, volumes, secrets out of the file, the
// drain inside the grace period).
func checkSentinelCompose(c *composeFile, image stageFacts, shutdown time.Duration) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, name := range slices.Concat(sentinelData, sentinelServices, sentinelBots) {
		if _, ok := c.Services[name]; !ok {
			fail("no %s service", name)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	replicas := checkSentinelRedis(c, fail)
	checkSentinelBots(c, replicas, image, shutdown, fail)
	for name, svc := range c.Services {
		if svc.Restart != "unless-stopped" && svc.Restart != "always" {
			fail("%s restart policy %q: want unless-stopped", name, svc.Restart)
		}
		for _, v := range svc.Volumes {
			vol, _, _ := strings.Cut(v, ":")
			if _, ok := c.Volumes[vol]; !ok {
				fail("%s mounts volume %q, which the top-level volumes do not declare", name, vol)
			}
		}
	}
	return errs
}

// checkSentinelRedis checks the Redis servers and the sentinels, and
// returns how many replicas of the primary there are.
func checkSentinelRedis(c *composeFile, fail func(string, ...any)) int {
	replicas := 0
	for _, name := range slices.Concat(sentinelData, sentinelServices) {
		svc := c.Services[name]
		cmd := strings.Join(svc.Command, " ")
		if repo, tag, _ := strings.Cut(svc.Image, ":"); repo != "redis" || tag == "" || tag == "latest" {
			fail("%s image %q: want the official image with a pinned tag", name, svc.Image)
		}
		if svc.Healthcheck == nil || !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), "ping") {
			fail("%s has no healthcheck that pings it", name)
		}
		if !hasVolumeAt(svc.Volumes, "/data") {
			fail("%s keeps /data on no volume: its configuration (its role after a failover) dies with the container", name)
		}
		if len(svc.Ports) > 0 {
			fail("%s publishes ports %v; only otpbot needs it, over the compose network", name, svc.Ports)
		}
		if !strings.Contains(cmd, "[ -f /data/") {
			fail("%s writes its configuration at every start: a restart would forget the role a failover gave it", name)
		}
		if slices.Contains(sentinelData, name) {
			if !strings.Contains(cmd, "'appendonly yes'") {
				fail("%s runs without appendonly yes: a crash of every Redis at once would lose acknowledged pushes", name)
			}
			if strings.Contains(cmd, "'replicaof redis-primary 6379'") {
				replicas++
			}
		} else {
			if !strings.Contains(cmd, "--sentinel") || !strings.Contains(cmd, "'sentinel monitor otpbot redis-primary 6379 2'") {
				fail("%s does not run Sentinel monitoring redis-primary as otpbot with a quorum of 2", name)
			}
			if !strings.Contains(cmd, "'sentinel resolve-hostnames yes'") {
				fail("%s cannot resolve the service names it monitors", name)
			}
		}
	}
	if replicas != len(sentinelData)-1 {
		fail("%d replicas of redis-primary, want %d", replicas, len(sentinelData)-1)
	}
	return replicas
}

// checkSentinelBots checks the otpbot instances of the Sentinel profile.
func checkSentinelBots(c *composeFile, replicas int, image stageFacts, shutdown time.Duration, fail func(string, ...any)) {
	var sentinelAddrs []string
	for _, name := range sentinelServices {
		sentinelAddrs = append(sentinelAddrs, name+":26379")
	}
	for _, name := range sentinelBots {
		bot := c.Services[name]
		env := bot.Environment
		if env["OTPBOT_STORE_DRIVER"] != "redis" || env["OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME"] != "otpbot" {
			fail("%s is not on Redis through the sentinels' master otpbot", name)
		}
		if env["OTPBOT_STORE_REDIS_SENTINEL_ADDRS"] != strings.Join(sentinelAddrs, ",") {
			fail("%s OTPBOT_STORE_REDIS_SENTINEL_ADDRS=%q, want every sentinel (%s)", name, env["OTPBOT_STORE_REDIS_SENTINEL_ADDRS"], strings.Join(sentinelAddrs, ","))
		}
		if _, ok := env["OTPBOT_STORE_REDIS_ADDR"]; ok {
			fail("%s sets OTPBOT_STORE_REDIS_ADDR next to the sentinels", name)
		}
		if acks, err := strconv.Atoi(env["OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK"]); err != nil || acks < 1 || acks >= replicas {
			fail("%s OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK=%q: want at least 1 and fewer than the %d replicas", name, env["OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK"], replicas)
		}
		for _, s := range sentinelServices {
			if bot.DependsOn[s].Condition != "service_healthy" {
				fail("%s does not wait for %s to be healthy", name, s)
			}
		}
		for k, v := range env {
			for _, w := range secretWords {
				if strings.Contains(k, w) && v != "" && !strings.HasPrefix(v, "${") {
					fail("%s: %s is written into the compose file; secrets go in the env file", name, k)
				}
			}
		}
		if d, err := time.ParseDuration(bot.StopGracePeriod); err != nil || d <= shutdown {
			fail("%s stop_grace_period %q does not exceed shutdown_timeout %v", name, bot.StopGracePeriod, shutdown)
		}
		if hc := bot.Healthcheck; hc == nil || len(hc.Test) < 2 || image.copies[hc.Test[1]] == "" {
			fail("%s has no healthcheck the image can run", name)
		}
	}
	if c.Services["otpbot-1"].Build == nil {
		fail("otpbot-1 does not build the image otpbot-2 runs")
	}
	if p1, p2 := c.Services["otpbot-1"].Ports, c.Services["otpbot-2"].Ports; len(p1) != 1 || len(p2) != 1 || p1[0] == p2[0] {
		fail("the two otpbot instances must publish one port each, different ones (%v, %v)", p1, p2)
	}
}

func TestComposeSentinel(t *testing.T) {
	c, err := parseCompose(readRepoFile(t, "deploy/compose.sentinel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reportErrors(t, "compose.sentinel.yaml", checkSentinelCompose(c, imageFacts(t), shutdownTimeout(t)))
}

// TestComposeSentinelChecksCatchMistakes breaks the file one way at a time
// and wants the checks to name each break.
func TestComposeSentinelChecksCatchMistakes(t *testing.T) {
	src := readRepoFile(t, "deploy/compose.sentinel.yaml")
	tests := []struct {
		name, old, new, want string
	}{
		{"config rewritten at every start", "[ -f /data/sentinel.conf ] || ", "", "forget the role"},
		{"no AOF", "'appendonly yes' 'appendfsync everysec'", "'appendfsync everysec'", "appendonly"},
		{"quorum of one", "'sentinel monitor otpbot redis-primary 6379 2'", "'sentinel monitor otpbot redis-primary 6379 1'", "quorum of 2"},
		{"a sentinel missing", "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379", "sentinel-1:26379,sentinel-2:26379", "every sentinel"},
		{"no replica left after a failover", `OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK: "1"`, `OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK: "2"`, "fewer than the 2 replicas"},
		{"acknowledged before replicated", `OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK: "1"`, `OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK: "0"`, "at least 1"},
		{"standalone address too", "OTPBOT_STORE_DRIVER: redis", "OTPBOT_STORE_DRIVER: redis\n      OTPBOT_STORE_REDIS_ADDR: redis-primary:6379", "OTPBOT_STORE_REDIS_ADDR"},
		{"same port twice", `"127.0.0.1:8081:8080"`, `"127.0.0.1:8080:8080"`, "different ones"},
		{"published redis", "      - redis-primary:/data\n", "      - redis-primary:/data\n    ports:\n      - \"6379:6379\"\n", "publishes ports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("compose.sentinel.yaml no longer contains %q; update this mutation", tt.old)
			}
			c, err := parseCompose(strings.Replace(src, tt.old, tt.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			wantErrorMentioning(t, checkSentinelCompose(c, imageFacts(t), contractShutdownTimeout), tt.want)
		})
	}
}

// TestComposeSentinelRuns starts the binary the image holds with
// otpbot-1's environment, the sentinels' service names standing for three
// sentinels on loopback (a primary and two replicas behind them): otpbot
// finds the primary through them, reports ready, and check reports the
// promise of the profile.
func TestComposeSentinelRuns(t *testing.T) {
	img := builtImage(t)
	c, err := parseCompose(readRepoFile(t, "deploy/compose.sentinel.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set := redistest.StartSentinel(t, 2)
	overrides := map[string]string{}
	for k, v := range c.Services["otpbot-1"].Environment {
		overrides[k] = v
	}
	delete(overrides, "OTPBOT_CONFIG")      // moved out of the container by imageEnv
	delete(overrides, "OTPBOT_HTTP_LISTEN") // likewise
	addrs := strings.Split(overrides["OTPBOT_STORE_REDIS_SENTINEL_ADDRS"], ",")
	if len(addrs) != len(set.Sentinels) {
		t.Fatalf("OTPBOT_STORE_REDIS_SENTINEL_ADDRS lists %d sentinels, the test runs %d", len(addrs), len(set.Sentinels))
	}
	for i, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port != "26379" {
			t.Fatalf("sentinel address %q: want host:26379", a)
		}
		addrs[i] = set.SentinelAddrs()[i]
	}
	overrides["OTPBOT_STORE_REDIS_SENTINEL_ADDRS"] = strings.Join(addrs, ",")
	if overrides["OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME"] != redistest.MasterName {
		t.Fatalf("master name %q; the test's sentinels monitor %q", overrides["OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME"], redistest.MasterName)
	}

	fake := bottest.New(t)
	dir := t.TempDir()
	port := freePort(t)
	env, vars := imageEnv(t, img, dir, port, overrides)
	writeConfig(t, vars["OTPBOT_CONFIG"], fake, "")
	bin := img.localOf(t, img.final.entrypoint[0])
	args := append(append([]string{}, img.final.entrypoint[1:]...), img.final.cmd...)
	d := startDaemon(t, bin, args, env, dir)
	waitHealthy(t, d, func() error { return probe(img, t, env) })
	waitHealthy(t, d, func() error { return getOK("http://127.0.0.1:" + port + "/readyz") })
	if _, err := os.Stat(vars["OTPBOT_STORE_PATH"]); err == nil {
		t.Error("with the sentinels from the compose file's environment, otpbot still created the embedded store")
	}
	d.stop(t, composeGrace(t))
}
