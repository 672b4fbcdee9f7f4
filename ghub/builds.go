package ghub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/sched"
)

// Builds run on the leader. A push recorded by any node is a pending Deployment in the
// replicated state; the leader's build loop picks it up, so a new leader resumes what the
// old one left pending or building. One build per component runs at a time; when several
// pushes wait, the newest is built and the older ones are marked superseded.

const (
	// buildTimeout bounds one whole build: download, extraction, compile, store.
	buildTimeout = 10 * time.Minute
	// servingTimeout bounds how long the leader waits for a new deployment to serve before
	// it reports failure on the commit.
	servingTimeout = 2 * time.Minute
)

// builder tracks the builds this node runs while it leads.
type builder struct {
	mu      sync.Mutex
	running map[string]*runningBuild // by component id
	wake    chan struct{}            // a build ended: look for the next one
	ctx     context.Context          // the term's: reports of serving end with it
	wg      sync.WaitGroup           // builds and their reports of this term
	// claimed holds the deployments whose final status this term reports (or reported):
	// each is reported once per term, by its build or by resumeReports, not by both.
	claimed map[string]bool
}

// claim reports whether the caller is the first of the term to report on deployment id.
func (b *builder) claim(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.claimed[id] {
		return false
	}
	if b.claimed == nil {
		b.claimed = map[string]bool{}
	}
	b.claimed[id] = true
	return true
}

func (b *builder) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

type runningBuild struct {
	deployment string
	cancel     context.CancelCauseFunc // with errComponentDeleted when its deployment is gone
	done       chan struct{}
}

// errComponentDeleted is why a build stops when its deployment is gone from the state
// (deleting a component deletes its deployments).
var errComponentDeleted = errors.New("component deleted")

// FromGitHub reports whether the leader builds d: deployments from pushes carry a branch,
// uploads do not.
func FromGitHub(d *statev1.Deployment) bool { return d.GetBranch() != "" && d.GetCommitSha() != "" }

func pendingOrBuilding(s statev1.DeploymentStatus) bool {
	return s == statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING || s == statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING
}

// buildPause is the least time between two passes of BuildLoop.
const buildPause = 20 * time.Millisecond

// BuildLoop is a leader controller: the node runs it for each term of leadership, with a
// ctx that ends with the term. It starts builds; when the term ends it cancels them and
// waits for them (and their status reports) to end.
func (s *Service) BuildLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	defer s.builds.wg.Wait()
	defer s.builds.cancelAll()
	s.builds.mu.Lock()
	s.builds.ctx = ctx
	s.builds.claimed = nil
	s.builds.mu.Unlock()
	for {
		idx := s.state.TableIndex(fsm.TableDeployments, fsm.TableComponents)
		t0 := time.Now()
		s.startBuilds(ctx)
		s.resumeReports(ctx)
		// Both read every deployment and component under the store's read lock: under a
		// burst of component writes, a pass per buildPause at most, and at most a fifth of
		// the time however large the state.
		if !tick.Sleep(ctx, min(tick.Pause(buildPause, time.Since(t0)), time.Second)) {
			return
		}
		ch, stop := s.state.WatchTables(idx, fsm.TableDeployments, fsm.TableComponents)
		select {
		case <-ctx.Done():
		case <-ch:
		case <-s.builds.wake:
		case <-t.C:
		}
		stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// term is the context of the current term of leadership.
func (s *Service) term() context.Context {
	s.builds.mu.Lock()
	defer s.builds.mu.Unlock()
	return s.builds.ctx
}

func (b *builder) cancelAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.running {
		r.cancel(nil)
	}
}

// startBuilds stops the builds whose deployment is gone, starts the newest waiting
// deployment of every component that has no build running, and marks older waiting ones
// superseded.
func (s *Service) startBuilds(ctx context.Context) {
	s.stopOrphanBuilds()
	// This runs at every change: read through a View and copy only the few waiting ones,
	// not the whole state.
	waiting := map[string][]*statev1.Deployment{}
	s.state.View(func(v fsm.View) {
		v.Deployments(func(d *statev1.Deployment) {
			if FromGitHub(d) && pendingOrBuilding(d.Status) {
				waiting[d.ComponentId] = append(waiting[d.ComponentId], proto.Clone(d).(*statev1.Deployment))
			}
		})
	})
	for comp, ds := range waiting {
		sort.Slice(ds, func(i, j int) bool { return ds[i].CreateIndex < ds[j].CreateIndex })
		newest := ds[len(ds)-1]
		s.builds.mu.Lock()
		if s.builds.running == nil {
			s.builds.running = map[string]*runningBuild{}
		}
		run := s.builds.running[comp]
		s.builds.mu.Unlock()
		for _, d := range ds[:len(ds)-1] {
			if run != nil && run.deployment == d.Id {
				continue // let the running build finish; the newest follows it
			}
			s.supersede(ctx, d, newest)
		}
		if run != nil {
			continue
		}
		cctx, stop := context.WithCancelCause(ctx)
		bctx, cancel := context.WithTimeout(cctx, buildTimeout)
		rb := &runningBuild{deployment: newest.Id, cancel: stop, done: make(chan struct{})}
		s.builds.mu.Lock()
		s.builds.running[comp] = rb
		s.builds.mu.Unlock()
		s.builds.wg.Add(1)
		go func() {
			defer s.builds.wg.Done()
			defer func() {
				cancel()
				stop(nil)
				s.builds.mu.Lock()
				if s.builds.running[comp] == rb {
					delete(s.builds.running, comp)
				}
				s.builds.mu.Unlock()
				close(rb.done)
				s.builds.kick()
			}()
			s.build(bctx, newest)
		}()
	}
}

// stopOrphanBuilds cancels the builds whose deployment is gone (its component was
// deleted): nothing would take their result, and a build may run for buildTimeout.
func (s *Service) stopOrphanBuilds() {
	s.builds.mu.Lock()
	running := make([]*runningBuild, 0, len(s.builds.running))
	for _, rb := range s.builds.running {
		running = append(running, rb)
	}
	s.builds.mu.Unlock()
	for _, rb := range running {
		if _, err := s.state.Deployment(rb.deployment); errors.Is(err, fsm.ErrNotFound) {
			rb.cancel(errComponentDeleted)
		}
	}
}

func (s *Service) supersede(ctx context.Context, d, by *statev1.Deployment) {
	msg := supersededPrefix + " (" + shortSHA(by.CommitSha) + ") before it was built"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.finishDeployment(cctx, d.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, msg, ""); err != nil {
		s.log.Warn("supersede deployment", "deployment", d.Id, "err", err)
		return
	}
	if !s.builds.claim(d.Id) {
		return
	}
	s.postStatus(ctx, d, "error", "not deployed: superseded by "+shortSHA(by.CommitSha))
}

func (s *Service) finishDeployment(ctx context.Context, id string, st statev1.DeploymentStatus, msg, buildLog string) error {
	_, err := s.cluster.Apply(ctx, &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: id, Status: st, Error: msg, BuildLog: buildLog,
	}}})
	return err
}

// buildLog collects a build's output for the deployment record and, as each line
// completes, shows it live in the component's log (stream "build"), where the console's
// Start page and `v9 logs` follow it.
type buildLog struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	line []byte            // the incomplete last line
	live func(line string) // nil: nothing shown live
}

// maxLiveLine bounds one live line; longer ones are cut.
const maxLiveLine = 4 << 10

func (l *buildLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 4<<20 {
		return len(p), nil // the state keeps only the tail; stop growing
	}
	if l.live != nil {
		rest := p
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				if len(l.line) < maxLiveLine {
					l.line = append(l.line, rest[:min(len(rest), maxLiveLine-len(l.line))]...)
				}
				break
			}
			if len(l.line) < maxLiveLine {
				l.line = append(l.line, rest[:min(i, maxLiveLine-len(l.line))]...)
			}
			l.live(string(l.line))
			l.line, rest = l.line[:0], rest[i+1:]
		}
	}
	return l.buf.Write(p)
}

func (l *buildLog) printf(format string, args ...any) { fmt.Fprintf(l, format+"\n", args...) }

func (l *buildLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// build turns one pending deployment into a ready and active one, or a failed one.
func (s *Service) build(ctx context.Context, d *statev1.Deployment) {
	start := time.Now()
	c, err := s.state.ComponentByID(d.ComponentId)
	if err != nil {
		s.log.Info("build not started: component deleted", "deployment", d.Id)
		return
	}
	log := &buildLog{live: func(line string) { s.o.Logs.Append(c.Name, d.Id, "build", line) }}
	if head, err := s.branchHead(ctx, c.GetSource().GetGithubRepo(), d.Branch); err != nil {
		s.log.Warn("read the branch head before a build", "deployment", d.Id, "err", err)
	} else if head != d.CommitSha {
		// A push whose commit is no longer the branch's head is not built: a delivery
		// replayed later (its signature still good, under a new delivery id) or one that
		// arrived after a newer push would otherwise deploy an old commit over a newer one.
		// The head is recorded instead unless it was already (as polling does), so that a
		// branch that moved without a webhook reaching v9 still deploys its newest commit.
		s.supersede(ctx, d, &statev1.Deployment{CommitSha: head})
		for _, l := range s.state.GithubLinks() {
			if l.ComponentId == d.ComponentId && l.Branch == d.Branch {
				s.pollOnce(ctx, l)
			}
		}
		return
	}
	s.log.Info("build started", "component", c.Name, "deployment", d.Id, "sha", shortSHA(d.CommitSha))
	log.printf("v9 build of %s on %s: %s@%s (%s)", c.Name, s.o.NodeID, c.GetSource().GetGithubRepo(), d.CommitSha, d.Branch)
	s.postStatus(ctx, d, "pending", "building on v9")
	if d.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING {
		if err := s.finishDeployment(ctx, d.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING, "", ""); notFound(err) {
			s.buildDiscarded(c, d)
			return
		} else if err != nil {
			s.log.Warn("mark building", "deployment", d.Id, "err", err)
			return
		}
	} else {
		log.printf("resuming a build another leader started")
	}
	digest, spec, unpin, err := s.buildArtifact(ctx, c, d, log)
	if unpin != nil {
		defer unpin()
	}
	if errors.Is(context.Cause(ctx), errComponentDeleted) {
		s.buildDiscarded(c, d)
		return
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		s.log.Info("build stopped: leadership ended", "deployment", d.Id)
		return // the next leader resumes it from the state
	}
	if err != nil {
		log.printf("FAILED: %v", err)
		s.failBuild(d, err.Error(), log.String())
		return
	}
	built := time.Since(start)

	// Commit, in one step: the deployment becomes ready with its artifact and spec, and
	// active with the component taking that spec, unless a newer deployment is active. A
	// leader change before this commits leaves the deployment building, and the next leader
	// builds it again; only a refusal by the state machine fails it.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	log.printf("ready: artifact %s (build %s)", digest, built.Round(time.Millisecond))
	idx, err := s.cluster.Apply(cctx, &statev1.Command{Op: &statev1.Command_SetDeploymentStatus{SetDeploymentStatus: &statev1.SetDeploymentStatus{
		Id: d.Id, Status: statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY, ArtifactDigest: digest,
		BuildLog: log.String(), Spec: spec, ArtifactOrigin: s.o.NodeID, Activate: true,
	}}})
	if err != nil {
		switch {
		case errors.Is(err, fsm.ErrInvalid) || connect.CodeOf(err) == connect.CodeInvalidArgument:
			log.printf("FAILED: %v", err)
			s.failBuild(d, "v9.toml: "+err.Error(), log.String())
		case notFound(err):
			s.buildDiscarded(c, d)
		default:
			// It stays building: the build loop (this leader's, or the next one's) builds it again.
			s.log.Warn("commit the built deployment; it stays building and is built again", "deployment", d.Id, "err", err)
		}
		return
	}
	if _, err := s.state.WaitForIndex(cctx, idx); err != nil {
		// The term ended before this replica caught up: the deployment is ready and
		// active, and the next term's resumeReports reports on it.
		return
	}
	if cur, err := s.state.ComponentByID(c.Id); err != nil || cur.ActiveDeploymentId != d.Id {
		switch {
		case err == nil && cur.RollbackIndex > d.CreateIndex:
			msg := fmt.Sprintf("built, not activated: rolled back after this push (v9 component rollback %s --to %s)", c.Name, d.Id)
			s.o.Logs.Append(c.Name, "", "system", fmt.Sprintf("deployment %s (%s) %s", d.Id, shortSHA(d.CommitSha), msg))
			s.postStatus(ctx, d, "error", msg)
		case err == nil:
			s.postStatus(ctx, d, "error", "built, but a newer deployment is active")
		}
		return
	}
	s.log.Info("deployment activated", "component", c.Name, "deployment", d.Id, "sha", shortSHA(d.CommitSha),
		"build", built.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	s.o.Logs.Append(c.Name, "", "system", fmt.Sprintf("deployment %s (%s) activated", d.Id, shortSHA(d.CommitSha)))
	// Report success once the new version serves; this does not hold up the next build.
	s.startReport(s.term(), d, idx)
}

// startReport starts the report of d's serving, unless this term reports on it already.
func (s *Service) startReport(ctx context.Context, d *statev1.Deployment, idx uint64) {
	if !s.builds.claim(d.Id) {
		return
	}
	s.builds.wg.Add(1)
	go func() {
		defer s.builds.wg.Done()
		s.reportServing(ctx, d, idx)
	}()
}

// notFound reports whether a write failed because what it names is gone (a state machine's
// refusal, or the same through a forwarded call).
func notFound(err error) bool {
	return errors.Is(err, fsm.ErrNotFound) || connect.CodeOf(err) == connect.CodeNotFound
}

// buildDiscarded reports the end of a build whose deployment is gone with its component c:
// the commit, "pending" so far, gets an error status that says so.
func (s *Service) buildDiscarded(c *statev1.Component, d *statev1.Deployment) {
	s.log.Info("build stopped: component deleted", "component", c.Name, "deployment", d.Id, "sha", shortSHA(d.CommitSha))
	if s.builds.claim(d.Id) {
		s.queueStatus(c, d, "error", "not deployed: component deleted")
	}
}

func (s *Service) failBuild(d *statev1.Deployment, msg, buildLog string) {
	ctx, cancel := context.WithTimeout(s.term(), 30*time.Second)
	defer cancel()
	if err := s.finishDeployment(ctx, d.Id, statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, msg, buildLog); err != nil {
		s.log.Warn("mark failed", "deployment", d.Id, "err", err)
		return
	}
	s.log.Info("build failed", "deployment", d.Id, "sha", shortSHA(d.CommitSha), "reason", msg)
	if s.builds.claim(d.Id) {
		s.postStatus(ctx, d, "failure", msg)
	}
}

// branchHead returns the commit at the head of a repository's branch, from GitHub.
func (s *Service) branchHead(ctx context.Context, repo, branch string) (string, error) {
	owner, name, err := SplitRepo(repo)
	if err != nil {
		return "", err
	}
	gh, err := NewClient(s.o.GitHub, nil)
	if err != nil {
		return "", err
	}
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, _, err := gh.Repositories.GetBranch(hctx, owner, name, branch, 3)
	if err != nil {
		return "", err
	}
	return b.GetCommit().GetSHA(), nil
}

// buildArtifact downloads, checks and builds a commit and stores the artifact. The returned
// unpin keeps the artifact from garbage collection until the deployment references it.
func (s *Service) buildArtifact(ctx context.Context, c *statev1.Component, d *statev1.Deployment, log *buildLog) (string, *statev1.ComponentSpec, func(), error) {
	repo := c.GetSource().GetGithubRepo()
	gh, err := NewClient(s.o.GitHub, nil)
	if err != nil {
		return "", nil, nil, err
	}
	token, _ := s.o.GitHub.ReadToken()
	work := filepath.Join(s.o.DataDir, "builds", d.Id)
	os.RemoveAll(work)
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")

	t0 := time.Now()
	if err := FetchTarball(ctx, gh, repo, d.CommitSha, src, FetchOptions{Token: token, Limits: s.buildLimits()}); err != nil {
		return "", nil, nil, fmt.Errorf("fetch %s@%s: %w", repo, shortSHA(d.CommitSha), err)
	}
	log.printf("fetched and extracted the tarball in %s", time.Since(t0).Round(time.Millisecond))

	m, err := deploy.LoadManifest(src)
	if err != nil {
		return "", nil, nil, err
	}
	if m.RuntimeEnum() != c.Runtime {
		return "", nil, nil, fmt.Errorf("v9.toml: runtime %q, but component %q runs %s (delete and re-create it to change its runtime)", m.Runtime, c.Name, deploy.RuntimeName(c.Runtime))
	}
	if m.Name != c.Name {
		log.printf("note: v9.toml names %q; this repository deploys component %q", m.Name, c.Name)
	}
	t1 := time.Now()
	module, err := deploy.Build(ctx, src, m, s.o.Build, log)
	if err != nil {
		return "", nil, nil, err
	}
	if m.Runtime == deploy.RuntimeWasm {
		mm := *m
		mm.Wasm.Module = module
		if err := deploy.CheckRunnable(&mm, src); err != nil {
			return "", nil, nil, err
		}
	}
	log.printf("built in %s", time.Since(t1).Round(time.Millisecond))
	spec := m.Spec()
	if spec.Wasm != nil && module != "" {
		spec.Wasm.Module = module
	}
	if spec.Container != nil {
		spec.Container.Archive = m.Container.Archive
	}

	t2 := time.Now()
	pr, pw := io.Pipe()
	go func() {
		_, err := deploy.Pack(src, pw)
		pw.CloseWithError(err)
	}()
	digest, err := s.o.Artifacts.Put(pr)
	pr.CloseWithError(errors.New("done"))
	if err != nil {
		return "", nil, nil, fmt.Errorf("store artifact: %w", err)
	}
	unpin := s.o.Artifacts.Pin(digest)
	log.printf("stored the artifact in %s", time.Since(t2).Round(time.Millisecond))
	return digest, spec, unpin, nil
}

func (s *Service) buildLimits() deploy.Limits {
	lim := s.o.Build.Limits
	if lim.MaxFiles <= 0 {
		lim.MaxFiles = deploy.DefaultLimits.MaxFiles
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = s.o.MaxArtifactBytes
	}
	return lim
}

// reportServing posts success on the commit once the deployment runs its wanted replicas,
// or failure when it does not within servingTimeout.
func (s *Service) reportServing(ctx context.Context, d *statev1.Deployment, idx uint64) {
	ctx, cancel := context.WithTimeout(ctx, servingTimeout)
	defer cancel()
	s.state.WaitForIndex(ctx, idx)
	var reason string
	var last *statev1.Component // as last read: its commit's status outlives it
	for {
		idx := s.state.TableIndex(servingTables...)
		c, err := s.state.ComponentByID(d.ComponentId)
		if err != nil {
			if last != nil {
				s.queueStatus(last, d, "error", "not serving: component deleted")
			}
			return
		}
		last = c
		if c.ActiveDeploymentId != d.Id {
			// Rolled back or superseded: whoever did that reports. A rollout the leader
			// failed is reported here, as its failure.
			if cur, err := s.state.Deployment(d.Id); err == nil && cur.Status == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
				state, desc := failedStatus(cur)
				s.postStatus(ctx, cur, state, desc)
			}
			return
		}
		running := uint32(0)
		for _, p := range s.state.Placements("") {
			if p.DeploymentId != d.Id || p.Desired != statev1.PlacementDesired_PLACEMENT_DESIRED_RUN {
				continue
			}
			switch p.Observed {
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_RUNNING:
				running++
			case statev1.PlacementObserved_PLACEMENT_OBSERVED_FAILED:
				reason = p.NodeId + ": " + p.Reason
			}
		}
		cur, err := s.state.Deployment(d.Id)
		if err != nil {
			return
		}
		// A canary is not success yet: the proxies' figures may still fail it.
		wanted := sched.Wanted(c, cur) // at zero replicas, one proves a new version first
		if (running >= wanted && !cur.Canary) || c.Desired == statev1.DesiredState_DESIRED_STATE_PAUSED {
			s.postStatus(ctx, d, "success", fmt.Sprintf("deployed: %d/%d instances serving", running, wanted))
			return
		}
		ch, stop := s.state.WatchTables(idx, servingTables...)
		select {
		case <-ctx.Done():
			stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return // leadership ended
			}
			msg := "built, but not serving within " + servingTimeout.String()
			if reason != "" {
				msg += ": " + reason
			}
			s.postStatus(context.WithoutCancel(ctx), d, "failure", msg)
			return
		case <-ch:
		case <-time.After(500 * time.Millisecond):
		}
		stop()
	}
}

// servingTables are the tables reportServing reads.
var servingTables = []fsm.Table{fsm.TableComponents, fsm.TablePlacements, fsm.TableDeployments}

// statusPost is one commit status waiting to be sent.
type statusPost struct {
	repo, sha  string
	deployment string
	status     githubStatus
}

// postStatus queues the commit status of a deployment's commit. Statuses are sent in order
// by StatusLoop, so a build never waits for GitHub and "pending" never overtakes "success".
// Reporting is best effort: GitHub being unreachable never fails a deployment.
func (s *Service) postStatus(_ context.Context, d *statev1.Deployment, state, desc string) {
	if c, err := s.state.ComponentByID(d.ComponentId); err == nil {
		s.queueStatus(c, d, state, desc)
	}
}

// queueStatus is postStatus for a deployment of component c (which may be gone from the
// state by now).
func (s *Service) queueStatus(c *statev1.Component, d *statev1.Deployment, state, desc string) {
	if c.GetSource().GetGithubRepo() == "" || d.CommitSha == "" {
		return
	}
	p := statusPost{repo: c.Source.GithubRepo, sha: d.CommitSha, deployment: d.Id,
		status: githubStatus{State: state, Description: truncate(desc, 140), Context: "v9/" + c.Name,
			TargetURL: consolePage(s.o.PublicURL, c.Name)}}
	select {
	case s.statuses <- p:
	default:
		s.log.Warn("commit status dropped: queue full", "repo", p.repo, "sha", shortSHA(p.sha), "state", state)
	}
}

// StatusLoop is a leader controller: it sends queued commit statuses, one at a time. When
// leadership ends, statuses still queued are dropped: a final one (success, failure,
// error) is not lost, because the next term, here or on another node, posts again the final
// status of every recent GitHub deployment (resumeReports); a "pending" one is posted again
// by the build the next leader resumes.
func (s *Service) StatusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.dropStatuses()
			return
		case p := <-s.statuses:
			s.sendStatus(ctx, p)
		}
	}
}

func (s *Service) dropStatuses() {
	for dropped := 0; ; dropped++ {
		select {
		case <-s.statuses:
		default:
			if dropped > 0 {
				s.log.Info("commit statuses dropped: leadership ended", "statuses", dropped)
			}
			return
		}
	}
}

func (s *Service) sendStatus(ctx context.Context, p statusPost) {
	gh, owner, repo, ok := s.repoClient(p.repo, "commit status")
	if !ok {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, _, err := gh.Repositories.CreateStatus(sctx, owner, repo, p.sha, p.status.toGitHub()); err != nil {
		s.log.Warn("commit status", "repo", p.repo, "sha", shortSHA(p.sha), "state", p.status.State, "err", err)
		return
	}
	if finalState(p.status.State) {
		s.reports.done(p.deployment)
	}
}

// finalState reports whether a commit status state is a deployment's last word.
func finalState(state string) bool {
	return state == "success" || state == "failure" || state == "error"
}

// supersededPrefix starts the error of a deployment superseded before it was built.
const supersededPrefix = "superseded by a newer push"

// failedStatus is the commit status of a failed GitHub deployment, from its recorded error.
func failedStatus(d *statev1.Deployment) (state, desc string) {
	if strings.HasPrefix(d.Error, supersededPrefix) {
		return "error", "not deployed: " + d.Error
	}
	return "failure", d.Error
}

// reported remembers, on this node, the deployments whose final commit status (success or
// failure) was posted, so that a new term does not post it again.
type reported struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (r *reported) done(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil || len(r.ids) > 4096 {
		r.ids = map[string]bool{}
	}
	r.ids[id] = true
}

func (r *reported) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

// resumeReports takes over, at every pass of the build loop, the final commit statuses
// nobody in this term reports on, which a previous term (of this node or another leader)
// may have left unposted (queued statuses are dropped when a term ends, and a deposed
// leader may still commit a build the new leader already looked at): among the GitHub
// deployments changed less than servingTimeout ago whose final status this node has not
// posted, it reports on the serving of the active ready ones and posts the failure of the
// failed ones (a build failure, a superseded push, a failed rollout), once per term. A status
// posted twice (by two leaders) is harmless: GitHub shows the latest.
func (s *Service) resumeReports(ctx context.Context) {
	now := time.Now()
	var ds, failed []*statev1.Deployment
	s.state.View(func(v fsm.View) {
		// The deployments first: the components are read only when a ready one may still
		// need its report (this pass runs after every component write, and is rarely so).
		var ready []*statev1.Deployment
		v.Deployments(func(d *statev1.Deployment) {
			if !FromGitHub(d) || now.Sub(d.GetUpdateTime().AsTime()) >= servingTimeout || s.reports.has(d.Id) {
				return
			}
			switch d.Status {
			case statev1.DeploymentStatus_DEPLOYMENT_STATUS_READY:
				ready = append(ready, d)
			case statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:
				failed = append(failed, proto.Clone(d).(*statev1.Deployment))
			}
		})
		if len(ready) == 0 {
			return
		}
		active := map[string]bool{}
		v.Components(func(c *statev1.Component) {
			if c.ActiveDeploymentId != "" {
				active[c.ActiveDeploymentId] = true
			}
		})
		for _, d := range ready {
			if active[d.Id] {
				ds = append(ds, proto.Clone(d).(*statev1.Deployment))
			}
		}
	})
	for _, d := range failed {
		if s.builds.claim(d.Id) {
			state, desc := failedStatus(d)
			s.postStatus(ctx, d, state, desc)
		}
	}
	for _, d := range ds {
		s.startReport(ctx, d, 0)
	}
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
