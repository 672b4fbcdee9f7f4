package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/velocity9/v9/deploy"
	"github.com/velocity9/v9/deployments"
	"github.com/velocity9/v9/rpc/client"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// uploadChunk is the size of one chunk of an upload stream.
const uploadChunk = 256 << 10

// errDeployTimeout is the cause of the context of a deploy whose --timeout passed.
var errDeployTimeout = errors.New("--timeout passed")

func newDeployCmd(a *app) *cobra.Command {
	var (
		message, author string
		noWait          bool
		timeout         time.Duration
	)
	host, _ := os.Hostname()
	if host == "" {
		host = "an unknown host"
	}
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Bundle a directory holding v9.toml, upload it and watch it roll out",
		Long: `Bundle DIR (default: the current directory), which must hold a v9.toml at its top,
upload it to any node and watch the new deployment roll out until every wanted instance
runs. The component the manifest names is created if it does not exist yet.

Progress goes to stderr; the result ("serving: NAME (deployment ID)", or the final
progress report as JSON with --json) to stdout. The command fails if the deployment
fails, or if it does not serve within --timeout.`,
		Example: `  v9 deploy
  v9 deploy ./examples/hello-wasm -m "new greeting"
  v9 deploy ./site --no-wait --json`,
		Args: optionalArg("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %s: want a positive duration such as 2m", timeout)}
			}
			ctx, cancel := context.WithTimeoutCause(cmd.Context(), timeout, errDeployTimeout)
			defer cancel()
			d := &deployer{a: a, c: a.client(), stderr: cmd.ErrOrStderr(), timeout: timeout}
			up, err := d.upload(ctx, dir, &deployv1.UploadMeta{CommitMessage: message, Author: author})
			if err != nil {
				return d.deadline(ctx, err, "the upload did not finish")
			}
			name, id := up.GetComponent().GetName(), up.GetDeployment().GetId()
			if noWait {
				return a.report(cmd, up, "deployment %s of %s created; not waiting for the rollout (see `v9 deployments list %s`)", id, name, name)
			}
			return d.watch(ctx, cmd, name, id)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&message, "message", "m", "deploy from "+host, "what this deployment is, shown in the history")
	f.StringVar(&author, "author", currentUser(), "who deploys, shown in the history")
	f.BoolVar(&noWait, "no-wait", false, "return once the upload is accepted, without watching the rollout")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up if the deployment does not serve within this time (upload included)")
	return cmd
}

// currentUser is $USER, or the account's name when it is unset.
func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// deployer is one run of `v9 deploy`.
type deployer struct {
	a       *app
	c       *client.Client
	stderr  io.Writer
	timeout time.Duration
}

// deadline turns the expiry of the command's --timeout into a message that says what was
// not done in time; other errors pass unchanged.
func (d *deployer) deadline(ctx context.Context, err error, what string) error {
	if errors.Is(context.Cause(ctx), errDeployTimeout) {
		return hintError{fmt.Errorf("%s within --timeout %s", what, d.timeout), "raise --timeout, or check the cluster with `v9 cluster status`"}
	}
	return err
}

// upload checks dir, packs it into a temporary file and streams it to the node.
func (d *deployer) upload(ctx context.Context, dir string, meta *deployv1.UploadMeta) (*deployv1.UploadResponse, error) {
	m, err := checkDeployDir(dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "v9-bundle-*.tar.gz")
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	digest, err := deploy.Pack(dir, tmp)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if size > deployments.MaxUploadBytes {
		return nil, hintError{fmt.Errorf("the bundle of %s is %s, more than the %s a node accepts", dir, formatBytes(size), formatBytes(deployments.MaxUploadBytes)),
			"leave build outputs and dependencies out of the directory, or deploy from GitHub"}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	fmt.Fprintf(d.stderr, "deploying %s (%s) from %s: bundle %s, %s\n", m.Name, m.Runtime, dir, shortDigest(digest), formatBytes(size))

	meta.Size = size
	stream := d.c.Deploy.Upload(ctx)
	progress := newProgress(d.stderr, size)
	err = sendUpload(stream, meta, tmp, progress)
	res, cerr := stream.CloseAndReceive()
	progress.done()
	if cerr != nil {
		// The node's answer says more than a failed send (which only sees the stream end).
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.stderr, "uploaded %s: deployment %s of %s\n", formatBytes(size), res.Msg.GetDeployment().GetId(), res.Msg.GetComponent().GetName())
	return res.Msg, nil
}

// sendUpload sends the metadata, then the bundle in chunks.
func sendUpload(stream *connect.ClientStreamForClient[deployv1.UploadRequest, deployv1.UploadResponse], meta *deployv1.UploadMeta, r io.Reader, p *progress) error {
	if err := stream.Send(&deployv1.UploadRequest{Part: &deployv1.UploadRequest_Meta{Meta: meta}}); err != nil {
		return err
	}
	buf := make([]byte, uploadChunk)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := stream.Send(&deployv1.UploadRequest{Part: &deployv1.UploadRequest_Chunk{Chunk: buf[:n]}}); serr != nil {
				return serr
			}
			p.add(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read bundle: %w", err)
		}
	}
}

// checkDeployDir checks that dir is a directory with a valid v9.toml, before anything is
// packed or sent.
func checkDeployDir(dir string) (*deploy.Manifest, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("cannot deploy %s: no such directory", dir)
	case err != nil:
		return nil, fmt.Errorf("cannot deploy %s: %w", dir, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("cannot deploy %s: not a directory (give the directory that holds %s)", dir, deploy.ManifestFile)
	}
	if _, err := os.Stat(filepath.Join(dir, deploy.ManifestFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, hintError{fmt.Errorf("cannot deploy %s: it has no %s", dir, deploy.ManifestFile),
			fmt.Sprintf("a deployable directory holds a %s at its top, at least:\n  name = \"hello\"\n  runtime = \"wasm\"\n  [wasm]\n  module = \"hello.wasm\"", deploy.ManifestFile)}
	}
	m, err := deploy.LoadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot deploy %s: %w", dir, err)
	}
	return m, nil
}

// watch follows the deployment until it is done, printing each new progress line. A watch
// the node ends early (its own deadline, a restart, a lost connection) is opened again, on
// the same or the next try, until the outcome is known or --timeout passes; the timeout's
// message says what the rollout was doing last.
func (d *deployer) watch(ctx context.Context, cmd *cobra.Command, name, id string) error {
	var last *deployv1.WatchResponse
	printed := ""
	for last == nil || !last.GetDone() {
		stream, err := d.c.Deploy.Watch(ctx, connect.NewRequest(&deployv1.WatchRequest{DeploymentId: id}))
		if err == nil {
			for stream.Receive() {
				last = stream.Msg()
				if msg := last.GetMessage(); msg != "" && msg != printed {
					fmt.Fprintln(d.stderr, msg)
					printed = msg
				}
				if last.GetDone() {
					break
				}
			}
			err = stream.Err()
			stream.Close()
		}
		if last.GetDone() || ctx.Err() != nil {
			break
		}
		switch connect.CodeOf(err) {
		case connect.CodeNotFound, connect.CodePermissionDenied, connect.CodeUnauthenticated, connect.CodeInvalidArgument:
			return err
		}
		select { // the node ended the watch before the outcome: watch again
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	if last == nil || !last.GetDone() {
		msg := fmt.Sprintf("deployment %s of %s did not serve within --timeout %s", id, name, d.timeout)
		if c := context.Cause(ctx); c != nil && !errors.Is(c, errDeployTimeout) { // stopped before --timeout (a signal, the caller)
			msg = fmt.Sprintf("deployment %s of %s was still rolling out when the wait stopped: %v", id, name, c)
		}
		if last != nil {
			msg += " (last: " + last.GetMessage() + ")"
		}
		return hintError{errors.New(msg), fmt.Sprintf("it may still roll out: see `v9 deployments list %s` and `v9 logs %s`, or raise --timeout", name, name)}
	}
	if d.a.json {
		if err := printJSON(cmd.OutOrStdout(), last); err != nil {
			return err
		}
	}
	if last.GetDeployment().GetStatus() == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED {
		return hintError{fmt.Errorf("deployment %s of %s failed: %s", id, name, orDash(last.GetDeployment().GetError())),
			fmt.Sprintf("the version that served before keeps serving; see `v9 logs %s`", name)}
	}
	// Done without failing: serving, paused, or replaced by a newer deployment. The
	// component says which (a node's local read is at least as new as its watch).
	if res, err := d.c.Components.Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: name})); err == nil {
		c := res.Msg.GetComponent()
		switch {
		case c.GetActiveDeploymentId() != id:
			return fmt.Errorf("deployment %s of %s was superseded by deployment %s before it served", id, name, orDash(c.GetActiveDeploymentId()))
		case c.GetDesired() == statev1.DesiredState_DESIRED_STATE_PAUSED:
			if d.a.json {
				return nil
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deployed: %s (deployment %s) is paused; serve it with `v9 component resume %s`\n", name, id, name)
			return err
		}
	} else if last.GetRunning() < last.GetWanted() {
		return fmt.Errorf("deployment %s of %s is not serving: %s", id, name, last.GetMessage())
	}
	if d.a.json {
		return nil
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "serving: %s (deployment %s)\n", name, id)
	return err
}

// progress shows an upload's progress on one rewritten line of a terminal; elsewhere it
// shows nothing (the caller prints a final line).
type progress struct {
	w          io.Writer
	tty        bool
	total, n   int64
	lastUpdate time.Time
	shown      bool
}

func newProgress(w io.Writer, total int64) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total}
}

func (p *progress) add(n int) {
	p.n += int64(n)
	if !p.tty || (time.Since(p.lastUpdate) < 100*time.Millisecond && p.n < p.total) {
		return
	}
	p.lastUpdate = time.Now()
	pct := 100
	if p.total > 0 {
		pct = int(p.n * 100 / p.total)
	}
	fmt.Fprintf(p.w, "\r\033[Kuploading %s / %s (%d%%)", formatBytes(p.n), formatBytes(p.total), pct)
	p.shown = true
}

// done clears the progress line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// formatBytes writes sizes the way the CLI prints uploads: KiB (rounded up) below 10 MiB,
// MiB with one decimal above.
func formatBytes(n int64) string {
	if n < 10<<20 {
		return fmt.Sprintf("%d KiB", (n+1023)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// shortDigest turns "sha256:<hex>" into its first 12 hex digits.
func shortDigest(d string) string {
	return shortID(strings.TrimPrefix(d, "sha256:"))
}

func newDeploymentsCmd(a *app) *cobra.Command {
	cmd := group("deployments", "Show a component's deployment history", "deployment", "d")
	cmd.AddCommand(newDeploymentsListCmd(a), newDeploymentsLogsCmd(a))
	return cmd
}

func newDeploymentsLogsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logs DEPLOYMENT",
		Short: "Show the build log of a deployment (fetch, manifest, compile, artifact)",
		Args:  exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.client().Deploy.BuildLog(cmd.Context(), connect.NewRequest(&deployv1.BuildLogRequest{DeploymentId: args[0]}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			w := cmd.OutOrStdout()
			d := res.Msg.GetDeployment()
			status := enumWord(d.GetStatus().String(), "DEPLOYMENT_STATUS_")
			fmt.Fprintf(w, "deployment %s: %s", d.GetId(), status)
			if d.GetCommitSha() != "" {
				fmt.Fprintf(w, " (%s on %s)", shortID(d.GetCommitSha()), d.GetBranch())
			}
			fmt.Fprintln(w)
			if d.GetError() != "" {
				fmt.Fprintf(w, "error: %s\n", d.GetError())
			}
			if log := res.Msg.GetLog(); log != "" {
				fmt.Fprintf(w, "\n%s", log)
				if !strings.HasSuffix(log, "\n") {
					fmt.Fprintln(w)
				}
			} else if d.GetStatus() == statev1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING || d.GetStatus() == statev1.DeploymentStatus_DEPLOYMENT_STATUS_BUILDING {
				fmt.Fprintln(w, "\nthe build has not finished; its log is recorded when it does")
			}
			return nil
		},
	}
}

func newDeploymentsListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list COMPONENT",
		Aliases: []string{"ls"},
		Short:   "List a component's deployments, newest first; * marks the active one",
		Args:    exactArgs("COMPONENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client()
			res, err := c.Deploy.List(cmd.Context(), connect.NewRequest(&deployv1.ListRequest{Component: args[0]}))
			if err != nil {
				return err
			}
			ds := res.Msg.GetDeployments()
			if done, err := a.printedList(cmd, res.Msg, len(ds), "No deployments of "+args[0]+" yet. Deploy one with `v9 deploy DIR` or a push to its repository."); done {
				return err
			}
			comp, err := c.Components.Get(cmd.Context(), connect.NewRequest(&componentv1.GetRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return printDeploymentTable(cmd.OutOrStdout(), ds, comp.Msg.GetComponent().GetActiveDeploymentId(), time.Now())
		},
	}
}

func printDeploymentTable(w io.Writer, ds []*statev1.Deployment, active string, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATUS\tCOMMIT\tDIGEST\tMESSAGE\tCREATED\tACTIVE")
	var failures []string
	for _, d := range ds {
		mark := ""
		if d.GetId() == active {
			mark = "*"
		}
		commit := ""
		if sha := d.GetCommitSha(); len(sha) >= 7 {
			commit = sha[:7]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			d.GetId(), enumWord(d.GetStatus().String(), "DEPLOYMENT_STATUS_"), orDash(commit), orDash(shortDigest(d.GetArtifactDigest())),
			orDash(oneLine(d.GetCommitMessage(), 50)), age(d.GetCreateTime().AsTime(), now, d.GetCreateTime() != nil), mark)
		if d.GetStatus() == statev1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED && d.GetError() != "" {
			failures = append(failures, fmt.Sprintf("%s failed: %s", d.GetId(), d.GetError()))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failures) > 0 {
		_, err := fmt.Fprintf(w, "\n%s\n", strings.Join(failures, "\n"))
		return err
	}
	return nil
}

// oneLine keeps the first line of s, cut to n runes with an ellipsis.
func oneLine(s string, n int) string {
	s, _, cut := strings.Cut(strings.TrimSpace(s), "\n")
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if cut {
		return s + " …"
	}
	return s
}
