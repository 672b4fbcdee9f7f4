//go:build !race

package node

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
)

// BenchmarkGitHubPushToServe measures P4: a signed push webhook received → the new version
// served by all three nodes' proxies, with its split: intake (the webhook answered, the
// pending deployment committed), fetch (tarball download and extraction), build, store
// (bundle into the artifact store), commit (from the push answered to the deployment active,
// minus fetch, build and store) and rollout (active → served by every proxy). It reports
// medians over b.N pushes (run with -benchtime 10x for the closing note's ten pushes).
func BenchmarkGitHubPushToServe(b *testing.B) {
	for _, kind := range []string{"prebuilt", "go"} {
		b.Run(kind, func(b *testing.B) {
			c, gh := newGitHubCluster(b, 3, nil)
			files := func(i int) map[string]string {
				if kind == "go" {
					return goRepo(fmt.Sprintf(`"push %d"`, i))
				}
				return helloRepoTB(b, fmt.Sprintf("push%d", i))
			}
			want := func(i int) string {
				if kind == "go" {
					return fmt.Sprintf("push %d", i)
				}
				return fmt.Sprintf("hello from wasm push%d", i)
			}
			gh.Commit(testRepo, "main", "first", files(-1))
			createLinked(b, c.Leader(b), "hello")
			waitServing(b, c.Nodes, want(-1))
			var intake, fetch, build, store, commit, rollout, total []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				sha, ds := gh.Push(testRepo, "main", fmt.Sprint(i), files(i))
				t1 := time.Now()
				if len(ds) != 1 || ds[0].Status != 202 {
					b.Fatalf("delivery: %+v", ds)
				}
				leader := c.Leader(b)
				var depID string
				var tActive time.Time
				Eventually(b, time.Minute, func() error {
					cur, _ := leader.Store().Component("hello")
					if d, err := leader.Store().Deployment(cur.GetActiveDeploymentId()); err == nil && d.CommitSha == sha {
						depID, tActive = d.Id, time.Now()
						return nil
					}
					return fmt.Errorf("not active yet")
				})
				waitServing(b, c.Nodes, want(i))
				tServed := time.Now()
				logs, err := deployClient(leader).BuildLog(context.Background(), connect.NewRequest(&deployv1.BuildLogRequest{DeploymentId: depID}))
				if err != nil {
					b.Fatal(err)
				}
				f, bu, st := logDuration(logs.Msg.Log, `fetched and extracted the tarball in (\S+)`), logDuration(logs.Msg.Log, `built in (\S+)`), logDuration(logs.Msg.Log, `stored the artifact in (\S+)`)
				intake = append(intake, t1.Sub(t0))
				fetch, build, store = append(fetch, f), append(build, bu), append(store, st)
				commit = append(commit, tActive.Sub(t1)-f-bu-st)
				rollout = append(rollout, tServed.Sub(tActive))
				total = append(total, tServed.Sub(t0))
			}
			b.StopTimer()
			for _, m := range []struct {
				name string
				ds   []time.Duration
			}{{"intake", intake}, {"fetch", fetch}, {"build", build}, {"store", store}, {"commit", commit}, {"rollout", rollout}, {"total", total}} {
				b.ReportMetric(float64(medianDuration(m.ds).Microseconds())/1000, m.name+"-ms")
			}
		})
	}
}

func logDuration(log, pattern string) time.Duration {
	m := regexp.MustCompile(pattern).FindStringSubmatch(log)
	if m == nil {
		return 0
	}
	d, _ := time.ParseDuration(m[1])
	return d
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
