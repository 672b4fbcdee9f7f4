package dataplane

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// replicateLoop copies to this node the artifact of every component's active deployment,
// whether or not this node runs it, so that a replacement can start anywhere when the node
// that stored the artifact is gone. Fetch failures are retried at the next change or tick.
func (dp *DataPlane) replicateLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		st := dp.state() // watch the store read: the view wakes its waiters when left
		idx := st.TableIndex(replicateTables...)
		// Copy only the active ready deployments, not every component (the loop runs on every
		// node, whatever the number of components).
		var ready []*statev1.Deployment
		var names []string
		st.View(func(v fsm.View) {
			v.Components(func(c *statev1.Component) {
				d := v.Deployment(c.ActiveDeploymentId)
				if d == nil || d.Status != statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY || d.ArtifactDigest == "" {
					return
				}
				ready, names = append(ready, proto.Clone(d).(*statev1.Deployment)), append(names, c.Name)
			})
		})
		for i, d := range ready {
			if dp.cfg.Artifacts.Has(d.ArtifactDigest) { // a stat: outside the store's lock
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			if _, err := dp.artifactDir(fctx, d); err != nil && ctx.Err() == nil {
				dp.log.Debug("replicate artifact", "component", names[i], "deployment", d.Id, "err", err)
			}
			cancel()
		}
		if !tick.Sleep(ctx, time.Second) { // at most a pass a second, whatever the write rate
			return
		}
		if !dp.waitTables(ctx, st, idx, replicateTables, t.C, nil) {
			return
		}
	}
}

// replicateTables are the tables replicateLoop reads: active deployments and their artifacts.
var replicateTables = []fsm.Table{fsm.TableComponents, fsm.TableDeployments}

// waitTables waits until one of tables changes after idx, tick or kick fires (a nil channel
// never does), or ctx ends; it reports whether ctx is still live.
func (dp *DataPlane) waitTables(ctx context.Context, st *fsm.Store, idx uint64, tables []fsm.Table, tick <-chan time.Time, kick <-chan struct{}) bool {
	ch, stop := st.WatchTables(idx, tables...)
	defer stop()
	select {
	case <-ctx.Done():
	case <-ch:
	case <-tick:
	case <-kick:
	}
	return ctx.Err() == nil
}
