package main

import (
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// BenchmarkRenderMessage renders a live code message as a countdown
// refresh does (the template render is in every send and edit):
//
//	go test ./bench -run '^$' -bench RenderMessage -benchmem
func BenchmarkRenderMessage(b *testing.B) {
	set, err := templates.New("")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	msg := otpbot.Message{
		ID: "upay:PN1@42", Group: "upay:PN1", Target: otpbot.Target{ChatID: 42}, State: otpbot.StateLive,
		Event: otpbot.Event{
			ID: "upay:PN1", Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
			CardID: "C1", CardLast4: "1234", Code: "10000042",
			Merchant: "Amazon", Amount: "12.50", Currency: "EUR",
			ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute),
		},
	}
	text, err := set.RenderMessage(msg, now)
	if err != nil || !strings.Contains(text, "10000042") {
		b.Fatalf("RenderMessage = %q, %v", text, err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := set.RenderMessage(msg, now.Add(time.Duration(i%300)*time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}
