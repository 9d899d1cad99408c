package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/otpbot/otpbot/chatpage"
	"github.com/otpbot/otpbot/webhooks"
)

// demoSample is a sample push of the demo's panel: a body of
// webhooks.SampleBodies.
type demoSample struct {
	provider, label, file string
	// message: the event becomes a message in the linked chats.
	message bool
}

// id names the sample for the page: provider/file.
func (s demoSample) id() string { return s.provider + "/" + strings.TrimSuffix(s.file, ".json") }

// demoSamples are every event of both providers' documents, code events
// first.
func demoSamples() []demoSample {
	u := func(label, file string, message bool) demoSample { return demoSample{"upay", label, file, message} }
	h := func(label, file string, message bool) demoSample {
		return demoSample{"hypercard", label, file, message}
	}
	return []demoSample{
		u(webhooks.UPay3DSOTPEvent, "3ds_otp.json", true),
		u(webhooks.UPay3DSConfirmEvent, "3ds_confirm.json", true),
		u(webhooks.UPayVerify+" code", "ne_verify_code.json", true),
		u(webhooks.UPayVerify+" link", "ne_verify_link.json", true),
		u(webhooks.UPayAuthorization, "cc_authorization.json", false),
		u(webhooks.UPayCardConsume, "cc_consume.json", false),
		u(webhooks.UPayCardRefund, "cc_refund.json", false),
		u(webhooks.UPayCardWithdrawCash, "cc_withdraw_cash.json", false),
		u(webhooks.UPayCardRedeem, "cc_redeem.json", false),
		u(webhooks.UPayCardRecharge, "cc_recharge.json", false),
		u(webhooks.UPayRechargeApplied, "cr_recharge.json", false),
		u(webhooks.UPayCardApplied, "ca_apply.json", false),
		u(webhooks.UPayKYCEvent, "ks_kyc.json", false),
		u(webhooks.UPayCardStatusChanged, "csc_status_change.json", false),
		u(webhooks.UPayMaterialFlow, "mf_material_flow.json", false),
		u(webhooks.UPayCardApproved, "cs_approved.json", false),
		u(webhooks.UPayCardEventName, "ce_event.json", false),
		h(webhooks.HyperCardAuth3DSType, "auth_3ds_pending.json", true),
		h(webhooks.HyperCardOptCodeType, "opt_code.json", true),
		h(webhooks.HyperCardConsumeType, "consume.json", false),
		h(webhooks.HyperCardRechargeType, "recharge.json", false),
		h(webhooks.HyperCardOperationType, "operation.json", false),
		h(webhooks.HyperCardBuyCoinType, "buy_coin.json", false),
		h(webhooks.HyperCardCancelCardType, "cancel_card.json", false),
		h(webhooks.HyperCardOpenCardType, "open_card.json", false),
		h(webhooks.HyperCardConfigChangeType, "card_config_change.json", false),
	}
}

// demoPusher sends the panel's samples to the demo's own webhook
// endpoints, each with a fresh identity, fresh times and a fresh code, and
// authenticated by the same code as `otpbot sign` (signUPay,
// signHyperCard): the URL token, and UPay's X-UPA-SIGN or HyperCard's
// SHA256withRSA signature with the key pair generated at start.
type demoPusher struct {
	cfg       *Config
	keys      Keys
	hcKeyFile string // HyperCard's private key, which signs its pushes
	base      string
	client    *http.Client
	samples   map[string]demoSample
	seq       atomic.Int64
}

func newDemoPusher(cfg *Config, keys Keys, hcKeyFile, base string) *demoPusher {
	p := &demoPusher{cfg: cfg, keys: keys, hcKeyFile: hcKeyFile, base: base,
		client: &http.Client{Timeout: 10 * time.Second}, samples: map[string]demoSample{}}
	for _, s := range demoSamples() {
		p.samples[s.id()] = s
	}
	return p
}

// pageSamples lists the samples for the page.
func pageSamples() []chatpage.Sample {
	var out []chatpage.Sample
	for _, s := range demoSamples() {
		out = append(out, chatpage.Sample{ID: s.id(), Provider: s.provider, Event: s.label, Message: s.message})
	}
	return out
}

// Push sends sample id for card and returns how the webhook answered.
func (p *demoPusher) Push(ctx context.Context, id, card string) (chatpage.PushResult, error) {
	s, ok := p.samples[id]
	if !ok {
		return chatpage.PushResult{}, fmt.Errorf("demo: no sample %q", id)
	}
	body, err := fs.ReadFile(webhooks.SampleBodies(), s.provider+"/"+s.file)
	if err != nil {
		return chatpage.PushResult{}, fmt.Errorf("demo: sample: %w", err)
	}
	now, n := time.Now(), p.seq.Add(1)
	var req signedRequest
	opts := signOptions{base: p.base, now: now, reveal: true}
	res := chatpage.PushResult{Event: s.label, Card: card}
	switch s.provider {
	case "upay":
		res.Provider = "UPay"
		if opts.body, err = freshUPay(body, card, now, n); err == nil {
			req, err = signUPay(p.cfg, p.keys, opts)
		}
	default:
		res.Provider = "HyperCard"
		opts.keyFile, opts.apiKey = p.hcKeyFile, "demo"
		if opts.body, err = freshHyperCard(body, card, now, n); err == nil {
			req, err = signHyperCard(p.cfg, opts)
		}
	}
	if err != nil {
		return chatpage.PushResult{}, fmt.Errorf("demo: %s: %w", id, err)
	}
	res.Status, res.Answer, err = p.post(ctx, req)
	return res, err
}

// post sends a signed request and returns the status and the start of
// the answer.
func (p *demoPusher) post(ctx context.Context, sr signedRequest) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sr.URL, bytes.NewReader(sr.Body))
	if err != nil {
		return 0, "", fmt.Errorf("demo: push: %w", err)
	}
	for _, h := range sr.Headers {
		req.Header.Set(h[0], h[1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("demo: push: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return resp.StatusCode, strings.TrimSpace(string(answer)), nil
}

// freshUPay makes a UPay sample a new push: a new trace and order number
// (its identity), its times now, a new code, for card.
func freshUPay(body []byte, card string, now time.Time, n int64) ([]byte, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	id := demoID(now, n)
	ms := now.UnixMilli()
	m["trace"], m["orderNo"] = "TR-"+id, "PN-"+id
	m["timestamp"] = like(m["timestamp"], ms)
	if d, ok := m["detail"].(map[string]any); ok {
		replace(d, "cardId", card)
		replace(d, "orderNo", "TX-"+id)
		replace(d, "transactionId", "T-"+id)
		for _, k := range []string{"transactionAt", "transactionTime", "subscribeAt"} {
			replace(d, k, like(d[k], ms))
		}
		for _, k := range []string{"3dsCode", "validateCode"} {
			replace(d, k, randomDigits(6))
		}
		if d["type"] != "3DS_CONFIRM_LINK" {
			replace(d, "code", randomDigits(6))
		}
	}
	return json.Marshal(m)
}

// demoApprovalTTL is how long a demo approval request may be answered.
const demoApprovalTTL = 3 * time.Minute

// freshHyperCard makes a HyperCard sample a new push: a new auth_id and
// trade numbers, its times now (an approval request pending until
// demoApprovalTTL from now), a new code, for card.
func freshHyperCard(body []byte, card string, now time.Time, n int64) ([]byte, error) {
	m, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	id := demoID(now, n)
	sec := now.Unix()
	replace(m, "card_id", card)
	replace(m, "auth_id", like(m["auth_id"], 1000+n))
	replace(m, "auth_result", like(m["auth_result"], 1))
	replace(m, "expired_time", like(m["expired_time"], now.Add(demoApprovalTTL).Unix()))
	for _, k := range []string{"created_Time", "updated_Time", "create_time", "modify_time"} {
		replace(m, k, like(m[k], sec))
	}
	for _, k := range []string{"mc_trade_no", "tx_id", "request_number"} {
		replace(m, k, "demo"+id)
	}
	replace(m, "code", randomDigits(6))
	return json.Marshal(m)
}

// demoID is a push identity unique within the run.
func demoID(now time.Time, n int64) string {
	return now.UTC().Format("150405") + "-" + strconv.FormatInt(n, 10)
}

func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("sample body: %w", err)
	}
	return m, nil
}

// replace sets m[k] to v when the sample has k.
func replace(m map[string]any, k string, v any) {
	if _, ok := m[k]; ok {
		m[k] = v
	}
}

// like is n as a string when old is one (the samples send numbers both
// ways), else as a JSON number.
func like(old any, n int64) any {
	if _, ok := old.(string); ok {
		return strconv.FormatInt(n, 10)
	}
	return json.Number(strconv.FormatInt(n, 10))
}
