package dataplane

// Removed makes this node serve nothing: it was removed from the cluster (why is what its
// proxy answers, with a 503). Every instance stops and none starts, no heartbeat is sent,
// until Rejoined. It logs the first time only.
func (dp *DataPlane) Removed(why string) {
	if dp.removed.Swap(&why) == nil {
		dp.log.Error("this node was removed from the cluster: its instances stop and its proxy refuses requests", "why", why)
	}
	dp.router.rebuild()
	dp.rec.poke()
}

// Rejoined undoes Removed: the node is a member again and serves what its replica says.
func (dp *DataPlane) Rejoined() {
	if dp.removed.Swap(nil) != nil {
		dp.log.Info("this node is a member of the cluster again: serving")
		dp.router.rebuild()
		dp.rec.poke()
	}
}

// IsRemoved reports whether Removed is in force.
func (dp *DataPlane) IsRemoved() bool { return dp.removed.Load() != nil }
