package fsm

import statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"

// noteTouched records the components cmd, just applied at index, touched (View.TouchedSince):
// those whose row, or one of whose deployments or placements, it changed. Removals are
// recorded where they happen (the rows are gone afterwards). A command whose touches are not
// known here makes every incremental reader derive everything again.
func (t *tables) noteTouched(index uint64, cmd *statev1.Command) {
	add := func(componentID string) { t.touched.add(index, componentID) }
	ofDeployment := func(id string) {
		if d := t.deployments[id]; d != nil {
			add(d.ComponentId)
		}
	}
	switch op := cmd.Op.(type) {
	case *statev1.Command_CreateComponent:
		add(op.CreateComponent.GetComponent().GetId())
	case *statev1.Command_CreateLinkedComponent:
		add(op.CreateLinkedComponent.GetComponent().GetId())
	case *statev1.Command_UpdateComponentSpec:
		add(t.byName[op.UpdateComponentSpec.GetName()])
	case *statev1.Command_SetComponentDesired:
		add(t.byName[op.SetComponentDesired.GetName()])
	case *statev1.Command_ScaleComponent:
		add(t.byName[op.ScaleComponent.GetName()])
	case *statev1.Command_PutSecret: // moves the component's secrets and spec indexes
		add(t.byName[op.PutSecret.GetComponent()])
	case *statev1.Command_DeleteSecret:
		add(t.byName[op.DeleteSecret.GetComponent()])
	case *statev1.Command_FailSpecRoll:
		add(op.FailSpecRoll.GetComponentId())
	case *statev1.Command_CreateDeployment:
		add(op.CreateDeployment.GetDeployment().GetComponentId())
	case *statev1.Command_SetDeploymentStatus: // a fallback or activation is of the same component
		ofDeployment(op.SetDeploymentStatus.GetId())
	case *statev1.Command_ActivateDeployment:
		add(op.ActivateDeployment.GetComponentId())
	case *statev1.Command_StartCanary:
		ofDeployment(op.StartCanary.GetDeploymentId())
	case *statev1.Command_EndCanary:
		ofDeployment(op.EndCanary.GetDeploymentId())
	case *statev1.Command_PutPlacements:
		for _, p := range op.PutPlacements.GetPlacements() {
			add(p.GetComponentId())
		}
	case *statev1.Command_SetPlacementObserved: // the first RUNNING marks its deployment served
		if p := t.placements[op.SetPlacementObserved.GetId()]; p != nil {
			add(p.ComponentId)
		}
	case *statev1.Command_SetNodeStatus, *statev1.Command_RemoveNode: // the node's placements are lost
		for _, p := range t.placements {
			if p.ModifyIndex == index {
				add(p.ComponentId)
			}
		}
	case *statev1.Command_DeleteComponent, *statev1.Command_DeletePlacements:
		// recorded as the rows go
	case *statev1.Command_RegisterNode, *statev1.Command_CreateUser, *statev1.Command_CreateApiToken,
		*statev1.Command_DeleteApiToken, *statev1.Command_AclBootstrap, *statev1.Command_RevokeApiToken,
		*statev1.Command_TouchApiTokens, *statev1.Command_PutGithubLink, *statev1.Command_DeleteGithubLink,
		*statev1.Command_DeleteGithubBinding, nil:
		// no component, deployment or placement
	default:
		t.touched.forget(index)
	}
}

// touchLog is how many changes a View remembers: more between two reads of an incremental
// reader make it derive everything again.
const touchLog = 8192

// touches is a bounded log of (index, component id): the components each write touched.
type touches struct {
	log   []touch // oldest first
	floor uint64  // touches at or below this index may be forgotten
}

type touch struct {
	index       uint64
	componentID string
}

func (r *touches) add(index uint64, componentID string) {
	if componentID == "" {
		return
	}
	if n := len(r.log); n > 0 && r.log[n-1] == (touch{index, componentID}) {
		return
	}
	if len(r.log) == touchLog {
		r.floor = r.log[len(r.log)/2].index
		r.log = append(r.log[:0], r.log[len(r.log)/2+1:]...)
	}
	r.log = append(r.log, touch{index, componentID})
}

// forget drops what the log knows up to index: a write whose touches are not known.
func (r *touches) forget(index uint64) {
	r.log, r.floor = r.log[:0], index
}

func (r *touches) since(idx uint64, fn func(string)) bool {
	if idx < r.floor {
		return false
	}
	for i := len(r.log) - 1; i >= 0 && r.log[i].index > idx; i-- {
		fn(r.log[i].componentID)
	}
	return true
}
