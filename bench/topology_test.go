package main

import (
	"strings"
	"testing"
)

// TestRedisYAML: an instance on a topology mode's Redis is configured with
// the keys otpbot reads for it, and one of them only.
func TestRedisYAML(t *testing.T) {
	tests := []struct {
		name string
		spec storeSpec
		want []string
		not  []string
	}{
		{"standalone", storeSpec{Addr: "127.0.0.1:6379", Prefix: "p:"}, []string{`    addr: "127.0.0.1:6379"`, `    prefix: "p:"`}, []string{"sentinel", "cluster_addrs", "min_replicas_ack"}},
		{"cluster", storeSpec{Cluster: []string{"127.0.0.1:1", "127.0.0.1:2"}, Prefix: "p:"}, []string{`    cluster_addrs: ["127.0.0.1:1", "127.0.0.1:2"]`}, []string{"addr:", "sentinel"}},
		{"sentinel", storeSpec{Sentinel: []string{"127.0.0.1:3"}, MinAcks: 1, Prefix: "p:"},
			[]string{"    sentinel:\n      master_name: \"otpbot\"\n      addrs: [\"127.0.0.1:3\"]", "    min_replicas_ack: 1"}, []string{"    addr:", "cluster_addrs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redisYAML(tt.spec)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in\n%s", n, got)
				}
			}
		})
	}
}
