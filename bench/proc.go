package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// procPeak is the highest resident memory and goroutine count seen.
type procPeak struct {
	RSSBytes   float64 `json:"rss_peak_bytes"`
	Goroutines float64 `json:"goroutines_peak"`
	// AnonBytes and FileBytes split the resident set at its peak sample
	// (RssAnon, RssFile of /proc/PID/status): the process's own memory
	// (heap, stacks) and mapped file pages — with the embedded store
	// mostly bbolt's mapping of its file, page cache the kernel may
	// reclaim and that grows with the file.
	AnonBytes float64 `json:"rss_anon_at_peak_bytes,omitempty"`
	FileBytes float64 `json:"rss_file_at_peak_bytes,omitempty"`
	// HWMBytes is the kernel's peak resident set (VmHWM), read at the end.
	HWMBytes float64 `json:"vm_hwm_bytes,omitempty"`
	// CPUSeconds is the CPU time otpbot used in the phase (user + system):
	// unlike a rate or a latency, it hardly moves with other work on the
	// machine, so it is what to compare between two builds.
	CPUSeconds float64 `json:"cpu_seconds"`
	// RedisCPUSeconds is the CPU time the Redis server used meanwhile
	// (its INFO; other clients of the same server count too).
	RedisCPUSeconds float64 `json:"redis_cpu_seconds,omitempty"`
	// WriteBytes is what otpbot sent to storage in the phase (write_bytes
	// of /proc/PID/io) less what its log grew by: for the embedded store,
	// the bbolt pages of its commits.
	WriteBytes float64 `json:"store_write_bytes,omitempty"`
}

// ioWritten is the bytes pid caused to be written to storage
// (write_bytes of /proc/PID/io; sockets do not count).
func ioWritten(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// cpuSeconds is the user + system CPU time of pid (0 if unknown).
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTicks = 100

// redisCPUSeconds is the Redis server's used_cpu_user + used_cpu_sys.
func redisCPUSeconds(addr string) float64 {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	defer client.Close()
	info, err := client.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// scrape reads /metrics every 200ms for the peak RSS and goroutines.
func (in *instance) scrape(ctx context.Context) {
	defer close(in.scrapeDone)
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		rss, gor, err := scrapeOnce(client, in.addr)
		if err == nil {
			in.record(rss, gor)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scrapeOnce reads process_resident_memory_bytes and go_goroutines.
func scrapeOnce(client *http.Client, addr string) (rss, goroutines float64, err error) {
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(val, 64)
		case "go_goroutines":
			goroutines, _ = strconv.ParseFloat(val, 64)
		}
	}
	return rss, goroutines, sc.Err()
}

// resetPeak starts a new peak window (a scenario's measured phase).
func (in *instance) resetPeak() {
	cpu := cpuSeconds(in.cmd.Process.Pid)
	written := ioWritten(in.cmd.Process.Pid) - fileSize(in.logPath)
	var rcpu float64
	if in.redisAddr != "" {
		rcpu = redisCPUSeconds(in.redisAddr)
	}
	in.peakMu.Lock()
	in.peak = procPeak{}
	in.cpuStart, in.redisCPUStart, in.writtenStart = cpu, rcpu, written
	in.peakMu.Unlock()
}

// peakNow returns the peaks seen so far and the kernel's high-water mark.
func (in *instance) peakNow() procPeak {
	// One sample now, so that a phase shorter than the scrape interval
	// has one too.
	if rss, gor, err := scrapeOnce(&http.Client{Timeout: 2 * time.Second}, in.addr); err == nil {
		in.record(rss, gor)
	}
	in.peakMu.Lock()
	p := in.peak
	cpuStart, redisStart, writtenStart := in.cpuStart, in.redisCPUStart, in.writtenStart
	in.peakMu.Unlock()
	p.WriteBytes = max(0, ioWritten(in.cmd.Process.Pid)-fileSize(in.logPath)-writtenStart)
	p.HWMBytes = vmHWM(in.cmd.Process.Pid)
	p.CPUSeconds = cpuSeconds(in.cmd.Process.Pid) - cpuStart
	if in.redisAddr != "" {
		p.RedisCPUSeconds = redisCPUSeconds(in.redisAddr) - redisStart
	}
	return p
}

// record takes one sample of the resident set and goroutines into the
// phase's peaks, with the split of the resident set when it is the peak.
func (in *instance) record(rss, goroutines float64) {
	pid := in.cmd.Process.Pid
	anon, file := procStatus(pid, "RssAnon:"), procStatus(pid, "RssFile:")
	in.peakMu.Lock()
	defer in.peakMu.Unlock()
	if rss >= in.peak.RSSBytes {
		in.peak.RSSBytes, in.peak.AnonBytes, in.peak.FileBytes = rss, anon, file
	}
	in.peak.Goroutines = max(in.peak.Goroutines, goroutines)
}

// vmHWM reads the peak resident set of pid from /proc (0 if unknown).
func vmHWM(pid int) float64 { return procStatus(pid, "VmHWM:") }

// procStatus reads one "Name: N kB" line of /proc/PID/status, in bytes (0
// if unknown).
func procStatus(pid int, field string) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// fileSize is the size of path in bytes (0 if unknown).
func fileSize(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size())
}

// profile fetches a CPU profile of the next d into path, in the
// background; the returned function waits for it. It does nothing unless
// the binary serves pprof.
func (in *instance) profile(path string, d time.Duration) (wait func() error) {
	if in.pprofAddr == "" || path == "" {
		return func() error { return nil }
	}
	errc := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Round(time.Second)/time.Second))
		client := &http.Client{Timeout: d + 30*time.Second}
		resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", in.pprofAddr, secs))
		if err != nil {
			errc <- fmt.Errorf("profile: %w", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			errc <- fmt.Errorf("profile: %w", err)
			return
		}
		_, err = io.Copy(f, resp.Body)
		errc <- errors.Join(err, f.Close())
	}()
	return func() error { return <-errc }
}

// heapProfile writes the otpbot's heap profile to path (with -pprof).
func (in *instance) heapProfile(path string) error {
	if in.pprofAddr == "" || path == "" {
		return nil
	}
	resp, err := http.Get("http://" + in.pprofAddr + "/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
