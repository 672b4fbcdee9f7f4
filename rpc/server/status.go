package server

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/fsm"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// componentStatuses reads, in one view of the replica, every component (or only the one named
// name, when name is not "") with its status: running and wanted replicas and the active
// deployment; with placements, each status also lists the component's placements. Everything
// returned is a copy.
func componentStatuses(st *fsm.Store, name string, placements bool) (uint64, []*statev1.Component, map[string]*componentv1.ComponentStatus) {
	var (
		idx      uint64
		comps    []*statev1.Component
		statuses = map[string]*componentv1.ComponentStatus{}
	)
	st.View(func(v fsm.View) {
		idx = v.Index()
		byID := map[string]*componentv1.ComponentStatus{}
		active := map[string]string{} // active deployment id -> component name
		v.Components(func(c *statev1.Component) {
			if name != "" && c.Name != name {
				return
			}
			s := &componentv1.ComponentStatus{}
			if c.Desired != statev1.DesiredState_DESIRED_STATE_PAUSED {
				s.Wanted = c.Replicas
			}
			comps = append(comps, proto.Clone(c).(*statev1.Component))
			statuses[c.Name] = s
			byID[c.Id] = s
			if c.ActiveDeploymentId != "" {
				active[c.ActiveDeploymentId] = c.Name
			}
		})
		v.Deployments(func(d *statev1.Deployment) {
			if n, ok := active[d.Id]; ok {
				cp := proto.Clone(d).(*statev1.Deployment)
				cp.BuildLog = ""
				statuses[n].ActiveDeployment = cp
			}
		})
		v.Placements(func(p *statev1.Placement) {
			s, ok := byID[p.ComponentId]
			if !ok {
				return
			}
			if placements {
				s.Placements = append(s.Placements, proto.Clone(p).(*statev1.Placement))
			}
			if p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
				return
			}
			switch p.Observed {
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING:
				s.Running++
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED:
				s.Failed++
			}
		})
	})
	for _, s := range statuses {
		sortPlacements(s.Placements)
	}
	sortComponents(comps)
	return idx, comps, statuses
}

func sortComponents(cs []*statev1.Component) {
	slices.SortFunc(cs, func(a, b *statev1.Component) int { return strings.Compare(a.Name, b.Name) })
}

func sortPlacements(ps []*statev1.Placement) {
	slices.SortFunc(ps, func(a, b *statev1.Placement) int {
		if c := strings.Compare(a.NodeId, b.NodeId); c != 0 {
			return c
		}
		return strings.Compare(a.Id, b.Id)
	})
}
