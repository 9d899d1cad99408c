package redistest

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
)

// slots is the number of Redis Cluster hash slots.
const slots = 16384

// ClusterSet is a Redis Cluster of primaries without replicas, on
// loopback, stopped when the test ends.
type ClusterSet struct {
	// Nodes are the primaries; node i serves the i-th equal share of the
	// hash slots.
	Nodes []*Server
	// bus are the nodes' cluster bus ports.
	bus []int
}

// StartCluster starts n primaries with --cluster-enabled yes, gives each
// an equal range of slots, introduces them to each other (CLUSTER MEET)
// and returns once every node sees the cluster state ok with all n
// primaries: what `redis-cli --cluster create` does, without redis-cli.
// args are more redis-server options for every node.
func StartCluster(tb T, n int, args ...string) *ClusterSet {
	tb.Helper()
	set := &ClusterSet{}
	for range n {
		bus := freePort(tb) // the default, port+10000, may be past 65535
		s := StartServer(tb, append([]string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
			"--cluster-port", strconv.Itoa(bus),
		}, args...)...)
		set.Nodes = append(set.Nodes, s)
		set.bus = append(set.bus, bus)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := set.form(ctx); err != nil {
		tb.Fatalf("redistest: cluster: %v", err)
	}
	return set
}

// Addrs are the nodes' addresses (store.redis.cluster_addrs).
func (set *ClusterSet) Addrs() []string {
	out := make([]string, len(set.Nodes))
	for i, s := range set.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// form assigns the slots, joins the nodes and waits for the state ok.
func (set *ClusterSet) form(ctx context.Context) error {
	n := len(set.Nodes)
	clients := make([]*goredis.Client, n)
	for i, s := range set.Nodes {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: s.Addr()})
		defer clients[i].Close()
	}
	for i, c := range clients {
		first, last := i*slots/n, (i+1)*slots/n-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			return fmt.Errorf("addslots on %s: %w", set.Nodes[i].Addr(), err)
		}
	}
	for i := 1; i < n; i++ {
		// The bus port is given: it is not the default port+10000.
		if err := clients[i].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", set.Nodes[0].port, set.bus[0]).Err(); err != nil {
			return fmt.Errorf("meet from %s: %w", set.Nodes[i].Addr(), err)
		}
	}
	for i, c := range clients {
		err := poll(ctx, func() error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if st := infoValue(info, "cluster_state"); st != "ok" {
				return fmt.Errorf("state %s", st)
			}
			if k := infoValue(info, "cluster_known_nodes"); k != strconv.Itoa(n) {
				return fmt.Errorf("knows %s of %d nodes", k, n)
			}
			if a := infoValue(info, "cluster_slots_ok"); a != strconv.Itoa(slots) {
				return fmt.Errorf("%s slots ok", a)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", set.Nodes[i].Addr(), err)
		}
	}
	return nil
}
