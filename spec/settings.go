package spec

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The rule for settings (docs/architecture.md, "What a user sets survives"): a manifest gives
// a component's defaults; what a user changes through the API, the CLI or the console (env,
// scale bounds, limits) is kept as UserSettings and overrides the manifest's value, on this
// deploy and every later one, until the user sets it back to the manifest's value.

// UserChanges is what a user who wants spec wanted changed relative to the manifest's spec
// (nil for a component made without a manifest: then every value set is the user's). A
// value equal to the manifest's is not a change.
func UserChanges(manifest, wanted *statev1.ComponentSpec) *statev1.UserSettings {
	if manifest == nil {
		manifest = &statev1.ComponentSpec{}
	}
	u := &statev1.UserSettings{}
	for k, v := range wanted.GetEnv() {
		if mv, ok := manifest.GetEnv()[k]; !ok || mv != v {
			if u.Env == nil {
				u.Env = map[string]string{}
			}
			u.Env[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(manifest.GetEnv())) {
		if _, ok := wanted.GetEnv()[k]; !ok {
			u.EnvRemoved = append(u.EnvRemoved, k)
		}
	}
	if wanted.GetScaleMin() != manifest.GetScaleMin() {
		u.ScaleMin = proto.Uint32(wanted.GetScaleMin())
	}
	if wanted.GetScaleMax() != manifest.GetScaleMax() {
		u.ScaleMax = proto.Uint32(wanted.GetScaleMax())
	}
	if wanted.GetConcurrency() != manifest.GetConcurrency() {
		u.Concurrency = proto.Uint32(wanted.GetConcurrency())
	}
	if wanted.GetMemoryBytes() != manifest.GetMemoryBytes() {
		u.MemoryBytes = proto.Uint64(wanted.GetMemoryBytes())
	}
	if wanted.GetTimeoutMs() != manifest.GetTimeoutMs() {
		u.TimeoutMs = proto.Uint32(wanted.GetTimeoutMs())
	}
	return u
}

// WithUser is a manifest's spec with the user's settings over it (a new spec).
func WithUser(manifest *statev1.ComponentSpec, u *statev1.UserSettings) *statev1.ComponentSpec {
	s := proto.Clone(manifest).(*statev1.ComponentSpec)
	if u == nil {
		return s
	}
	if len(u.Env) > 0 || len(u.EnvRemoved) > 0 {
		env := maps.Clone(s.Env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, u.Env)
		for _, k := range u.EnvRemoved {
			if _, set := u.Env[k]; !set {
				delete(env, k)
			}
		}
		s.Env = env
	}
	if u.ScaleMin != nil {
		s.ScaleMin = *u.ScaleMin
	}
	if u.ScaleMax != nil {
		s.ScaleMax = *u.ScaleMax
	}
	if u.Concurrency != nil {
		s.Concurrency = *u.Concurrency
	}
	if u.MemoryBytes != nil {
		s.MemoryBytes = *u.MemoryBytes
	}
	if u.TimeoutMs != nil {
		s.TimeoutMs = *u.TimeoutMs
	}
	return s
}

// RestartsInstances reports whether moving from spec a to spec b changes what a running
// instance was started with (env, memory, timeout, the module or image, the health path), so
// that instances must be replaced; scale bounds and concurrency do not.
func RestartsInstances(a, b *statev1.ComponentSpec) bool {
	return !maps.Equal(a.GetEnv(), b.GetEnv()) || a.GetMemoryBytes() != b.GetMemoryBytes() ||
		a.GetTimeoutMs() != b.GetTimeoutMs() || a.GetHealthPath() != b.GetHealthPath() ||
		a.GetExclusive() != b.GetExclusive() ||
		!proto.Equal(a.GetWasm(), b.GetWasm()) || !proto.Equal(a.GetContainer(), b.GetContainer())
}
