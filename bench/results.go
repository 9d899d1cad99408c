package main

import (
	"os"
	"strings"
	"time"
)

// Report is everything a run measured (the -json output).
type Report struct {
	Meta     Meta                    `json:"meta"`
	Baseline Baseline                `json:"baseline"`
	Stores   map[string]*StoreResult `json:"stores"`
	Targets  []Target                `json:"targets"`
}

// Meta says where and how the run happened.
type Meta struct {
	Started  string `json:"started"`
	Finished string `json:"finished"`
	CPUs     int    `json:"cpus"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Command  string `json:"command"`
	// Run is the run's id: its Redis prefixes are "otpbench:RUN:".
	Run     string  `json:"run"`
	Options options `json:"options"`
	// LoadStart and LoadEnd are /proc/loadavg at the start and the end:
	// other work on the machine skews every figure, the ceilings included.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// PerChatBurst: the otpbot measured knows telegram.rate.per_chat_burst
	// and ran with Telegram's (3); without it, it has no per-chat burst.
	PerChatBurst bool `json:"per_chat_burst"`
}

// loadavg is the 1, 5 and 15 minute load averages ("" where unknown).
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Baseline holds the ceilings measured in the same run.
type Baseline struct {
	// BareIngest is the bare handler driven like the ingest scenario.
	BareIngest loadResult `json:"bare_ingest"`
	// BareRate is the bare handler at the e2e rate: an unloaded round trip.
	BareRate   loadResult `json:"bare_rate"`
	BareRSS    float64    `json:"bare_rss_peak_bytes"`
	BoltCommit Latency    `json:"bolt_commit"`
	RedisPing  Latency    `json:"redis_ping"`
	// TelegramRTT is a getMe through the fake with its round trip: the
	// RTT that the Telegram scenarios are quoted against.
	TelegramRTT Latency `json:"telegram_rtt"`
}

// StoreResult holds the scenarios of one store driver.
type StoreResult struct {
	Ingest   *IngestResult   `json:"ingest,omitempty"`
	E2E      *E2EResult      `json:"e2e,omitempty"`
	Pressure *PressureResult `json:"pressure,omitempty"`
	Live     *LiveResult     `json:"live10k,omitempty"`
	RTT      *RTTResult      `json:"rtt,omitempty"`
	Busy     *BusyResult     `json:"busy_chats,omitempty"`
	Commands *CommandsResult `json:"commands,omitempty"`
	Recovery *RecoveryResult `json:"recovery,omitempty"`
	Errors   []string        `json:"errors,omitempty"`
}

// IngestResult is the ingest scenario.
type IngestResult struct {
	Load loadResult `json:"load"`
	Proc procPeak   `json:"process"`
	// OfBare is acks/s as a fraction of the bare handler's.
	OfBare float64 `json:"acks_of_bare"`
}

// E2EResult is the e2e scenario (and the measured phase of live10k).
type E2EResult struct {
	Load      loadResult `json:"load"`
	E2E       Latency    `json:"push_to_send"`
	Delivered int        `json:"delivered"`
	Missing   int        `json:"missing"`
	Proc      procPeak   `json:"process"`
	// FloorMS is two bare round trips at the rate plus one store round trip.
	FloorMS float64 `json:"floor_ms"`
}

// PressureResult is the pressure scenario (issue 5).
type PressureResult struct {
	Live   int           `json:"live_codes"`
	Chats  int           `json:"chats"`
	WarmUp time.Duration `json:"warm_up_ns"`
	// NewCodes ends when the fake acted on the sendMessage (the message
	// appears), half a round trip after otpbot sent it.
	NewCodes     Latency `json:"new_code_push_to_appear"`
	NewSent      int     `json:"new_codes_acked"`
	NewDelivered int     `json:"new_codes_delivered"`
	// WithinSecond is the fraction of acknowledged new codes sent within 1s.
	WithinSecond float64  `json:"within_1s"`
	Count429     int      `json:"telegram_429s"`
	Sends429     int      `json:"send_429s"`
	Edits429     int      `json:"edit_429s"`
	EditsPerSec  float64  `json:"edits_per_sec"`
	SendsPerSec  float64  `json:"sends_per_sec"`
	Proc         procPeak `json:"process"`
}

// LiveResult is the live10k scenario.
type LiveResult struct {
	Live   int           `json:"live_codes"`
	WarmUp time.Duration `json:"warm_up_ns"`
	E2E    E2EResult     `json:"new_codes"`
	// EditsPerSec is the countdown edits the fake accepted during the
	// measured phase.
	EditsPerSec float64 `json:"edits_per_sec"`
}
