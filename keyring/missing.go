package keyring

import "context"

// Missing returns, of uses (sealed values per key id, as the replicated state counts them),
// those whose key this node does not hold even after asking every other node: values no
// node can open. After a snapshot restored into a new cluster, these are the secrets sealed
// with the old cluster's keys: its keyring.json brings them back (docs/operating.md).
func (c *Cluster) Missing(ctx context.Context, uses map[string]int) map[string]int {
	var out map[string]int
	for id, n := range uses {
		if n == 0 || c.Keys.Has(id) {
			continue
		}
		if c.find(ctx, id); c.Keys.Has(id) {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[id] = n
	}
	return out
}
