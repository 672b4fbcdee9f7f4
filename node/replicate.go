package node

import (
	"context"
	"time"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// replicateLoop copies to this node the artifact of every component's active deployment,
// whether or not this node runs it, so that a replacement can start anywhere when the node
// that stored the artifact is gone. Fetch failures are retried at the next change or tick.
func (n *Node) replicateLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		ch, _ := n.fsm.Store.Changed()
		for _, c := range n.fsm.Store.Components() {
			d, _ := n.fsm.Store.Deployment(c.ActiveDeploymentId)
			if d == nil || d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || d.ArtifactDigest == "" || n.artifacts.Has(d.ArtifactDigest) {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			if _, err := n.artifactDir(fctx, d); err != nil && ctx.Err() == nil {
				n.log.Debug("replicate artifact", "component", c.Name, "deployment", d.Id, "err", err)
			}
			cancel()
		}
		if !sleepCtx(ctx, time.Second) { // at most a pass a second, whatever the write rate
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
	}
}
