package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/velocity9/v9/rpc/client"
)

// defaultAddr is the API address of the first node of `v9 dev` and of a default agent.
const defaultAddr = "127.0.0.1:7900"

// app is the state one invocation of the CLI shares between its commands: the global flags
// and what is built from them. A fresh app and command tree is made for every invocation,
// so nothing leaks between runs in tests.
type app struct {
	addr     string
	token    string // --token; V9_TOKEN and the login file are read when a client is made
	caFile   string // --ca; V9_CA and the file `v9 dev` writes are read when a client is made
	json     bool
	logLevel string
	logJSON  bool

	// setDefaultLogger makes the logger slog's default (and so the log package's). Only the
	// real process does it; in-process tests keep the global logger untouched.
	setDefaultLogger bool
	logger           *slog.Logger
}

// execute runs the CLI with args and returns the process exit code (exitcode.go: one per
// class of error). Errors are printed to stderr as "error: <message>", or as one JSON object
// with --json.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer, setDefaultLogger bool) int {
	a := &app{setDefaultLogger: setDefaultLogger, logger: slog.New(slog.DiscardHandler)}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	// A flag error stops parsing before --json is seen: look for it among the arguments.
	if a.json || slices.Contains(args, "--json") {
		printJSONError(stderr, err, a.addr)
	} else {
		printError(stderr, err, cmd, a.addr)
	}
	return classify(err).exit
}

func newRootCmd(a *app) *cobra.Command {
	addr := os.Getenv("V9_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	root := &cobra.Command{
		Use:   "v9",
		Short: "v9 runs serverless components on a cluster of nodes replicated with Raft",
		Long: `v9 runs serverless components (WebAssembly or containers) on a cluster of nodes that
replicate their control state with Raft.

  v9 dev                     start a three-node cluster on this machine
  v9 agent --data-dir DIR    run one node of a real cluster
  v9 cluster status          ask any node about the cluster
  v9 nodes list              list nodes with status, placements and heartbeats
  v9 component list          manage components through any node
  v9 deploy [DIR]            deploy a directory holding v9.toml and watch it roll out
  v9 logs NAME [-f]          show (and follow) a component's logs from every node
  v9 stats NAME              show a component's request counts and latency`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLogging(cmd.ErrOrStderr())
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", addr, "API address (host:port or URL) of any v9 node; env V9_ADDR")
	pf.StringVar(&a.caFile, "ca", "", "the cluster's CA certificate, to reach the API over TLS (https://ADDR, or ADDR with --ca); default $V9_CA, else the one `v9 dev` wrote")
	pf.StringVar(&a.token, "token", "", "API token (default $V9_TOKEN, else the file `v9 login` writes)")
	pf.BoolVar(&a.json, "json", false, "print results as JSON (protojson) for scripts")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.BoolVar(&a.logJSON, "log-json", false, "write logs to stderr as JSON lines instead of text")

	root.AddCommand(
		newAgentCmd(a),
		newDevCmd(a),
		newClusterCmd(a),
		newOperatorCmd(a),
		newNodesCmd(a),
		newComponentCmd(a),
		newDeployCmd(a),
		newDeploymentsCmd(a),
		newLogsCmd(a),
		newStatsCmd(a),
		newACLCmd(a),
		newTokenCmd(a),
		newSecretCmd(a),
		newLoginCmd(a),
		newAuditCmd(a),
		newTLSCmd(),
		newReaperCmd(),
		newImageCmd(a),
		newGenDocsCmd(),
	)
	return root
}

// group is a command that only groups others (its RunE is groupRun).
func group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{Use: use, Aliases: aliases, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRun}
}

// groupRun is the RunE of commands that only group others: it shows help, and rejects an
// unknown subcommand instead of silently showing help for it.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return cmd.Help()
}

// exactArgs is cobra.ExactArgs with the names of the arguments in its message, as a usage
// error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		if len(names) == 0 {
			return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
		}
		return usageError{fmt.Errorf("%s needs %s, got %d argument(s)", cmd.CommandPath(), strings.Join(names, " and "), len(args))}
	}
}

// optionalArg accepts zero or one argument, named in the usage error.
func optionalArg(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= 1 {
			return nil
		}
		return usageError{fmt.Errorf("%s takes at most one argument, %s, got %q", cmd.CommandPath(), name, args)}
	}
}

func (a *app) setupLogging(w io.Writer) error {
	var level slog.Level
	switch strings.ToLower(a.logLevel) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if a.logJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	a.logger = slog.New(h)
	if a.setDefaultLogger {
		slog.SetDefault(a.logger)
	}
	return nil
}

// client returns an API client of the node at --addr that sends the caller's token and
// logs each call at debug level.
func (a *app) client() *client.Client {
	opts := []client.Option{client.WithToken(a.secret()), client.WithConnectOptions(connect.WithInterceptors(logCalls(a.logger)))}
	addr := a.addr
	if ca, explicit := a.caPEM(); ca != nil {
		o, err := client.WithCA(ca)
		if err != nil {
			a.logger.Warn("the CA file is not usable", "err", err)
		} else {
			opts = append(opts, o)
		}
		if explicit && !strings.Contains(addr, "://") {
			addr = "https://" + addr // a CA given for this call means TLS
		}
	}
	return client.New(addr, opts...)
}

// logCalls logs each unary call, and the opening of each stream, at debug level.
func logCalls(log *slog.Logger) connect.Interceptor { return callLogger{log} }

type callLogger struct{ log *slog.Logger }

func (l callLogger) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		l.log.LogAttrs(ctx, slog.LevelDebug, "rpc",
			slog.String("procedure", req.Spec().Procedure),
			slog.String("code", codeName(err)),
			slog.Duration("took", time.Since(start)))
		return res, err
	}
}

func (l callLogger) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		l.log.LogAttrs(ctx, slog.LevelDebug, "rpc stream", slog.String("procedure", spec.Procedure))
		return next(ctx, spec)
	}
}

func (l callLogger) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func codeName(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// usageError is a mistake in how the command was called; its message comes with a pointer
// to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// hintError is an error with advice for the person who runs the command.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

// printError writes err for a person: "error: <message>", then a hint when one helps.
func printError(w io.Writer, err error, cmd *cobra.Command, addr string) {
	msg, hint := describeError(err, addr)
	fmt.Fprintf(w, "error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(w, "hint: %s\n", hint)
	}
	var ue usageError
	if cmd != nil && (errors.As(err, &ue) || isCobraUsage(err)) {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}

func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "required flag") ||
		strings.HasPrefix(s, "if any flags in the group") || strings.HasPrefix(s, "accepts ")
}

// describeError turns an error into a message and an optional hint. A Connect error that
// came from a node carries a message meant for a user and is shown as is, with its code in
// words unless the message says it already; one raised on this side (the node could not be
// reached) says which address was tried.
func describeError(err error, addr string) (msg, hint string) {
	var he hintError
	if errors.As(err, &he) {
		return err.Error(), he.hint
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err.Error(), ""
	}
	code := ce.Code()
	words := strings.ReplaceAll(code.String(), "_", " ")
	msg = ce.Message()
	if !connect.IsWireError(ce) {
		cause := transportCause(ce)
		if strings.Contains(cause, "x509:") || strings.Contains(cause, "tls:") {
			return fmt.Sprintf("TLS to the v9 node at %s failed: %s", addr, cause),
				"give the cluster's CA certificate with --ca FILE (or V9_CA), and dial an address the node's certificate names (v9 tls cert create --ip/--dns)"
		}
		switch code {
		case connect.CodeUnavailable:
			return fmt.Sprintf("cannot reach a v9 node at %s: %s", addr, cause),
				"is a node running there? Start a local cluster with `v9 dev`, or point --addr (or V9_ADDR) at any node"
		case connect.CodeDeadlineExceeded:
			return fmt.Sprintf("no answer from %s in time: %s", addr, cause), ""
		case connect.CodeCanceled:
			return "canceled", ""
		}
		if msg == "" {
			msg = cause
		}
	}
	switch {
	case msg == "":
		msg = words
	case !saysCode(msg, code):
		msg = fmt.Sprintf("%s (%s)", msg, words)
	}
	switch code {
	case connect.CodeUnavailable:
		hint = "the cluster may be electing a leader or may have lost its quorum; retry shortly and check `v9 cluster members`"
	case connect.CodeUnauthenticated:
		hint = "get a token from an admin (`v9 token create`), then `v9 login --token SECRET` or set V9_TOKEN"
	}
	return msg, hint
}

// saysCode reports whether msg already tells what code says, so "component "x": not found"
// is not followed by "(not found)".
func saysCode(msg string, code connect.Code) bool {
	msg = strings.ToLower(msg)
	switch code {
	case connect.CodeInvalidArgument:
		return strings.Contains(msg, "invalid")
	case connect.CodeAlreadyExists:
		return strings.Contains(msg, "exists")
	}
	return strings.Contains(msg, strings.ReplaceAll(code.String(), "_", " "))
}

// transportCause is the most useful text of a client-side failure: "dial tcp
// 127.0.0.1:7900: connect: connection refused" rather than the whole URL error.
func transportCause(ce *connect.Error) string {
	var opErr *net.OpError
	if errors.As(ce, &opErr) {
		return opErr.Error()
	}
	var urlErr *url.Error
	if errors.As(ce, &urlErr) {
		return urlErr.Err.Error()
	}
	return ce.Message()
}
