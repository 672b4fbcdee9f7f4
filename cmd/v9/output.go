package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// printJSON writes m as indented protojson (field names in lowerCamelCase, unset fields left
// out), followed by a newline.
func printJSON(w io.Writer, m proto.Message) error {
	return printJSONWith(w, m, false)
}

// printed ends a command on an RPC's error, or with --json by printing its answer; else
// (done false) the command goes on to print the answer as text.
func (a *app) printed(cmd *cobra.Command, res connect.AnyResponse, err error) (done bool, _ error) {
	if err != nil {
		return true, err
	}
	if a.json {
		return true, printJSON(cmd.OutOrStdout(), res.Any().(proto.Message))
	}
	return false, nil
}

// printedList is printed for a response listing n items: its JSON keeps an empty list
// ("components": []) so that scripts can iterate it, and an empty list prints the line
// empty instead of a table.
func (a *app) printedList(cmd *cobra.Command, m proto.Message, n int, empty string) (done bool, _ error) {
	switch {
	case a.json:
		return true, printJSONWith(cmd.OutOrStdout(), m, n == 0)
	case n == 0:
		_, err := fmt.Fprintln(cmd.OutOrStdout(), empty)
		return true, err
	}
	return false, nil
}

func printJSONWith(w io.Writer, m proto.Message, emitUnpopulated bool) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: emitUnpopulated}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// report prints the result of a change: the response as JSON with --json, else one line.
func (a *app) report(cmd *cobra.Command, res proto.Message, format string, args ...any) error {
	if a.json {
		return printJSON(cmd.OutOrStdout(), res)
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	return err
}

// cell is free text (a name, an actor) as a table cell shows it: as it is when printable,
// else quoted with its control characters escaped, so that it can neither forge rows nor
// send the terminal escapes.
func cell(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func printComponentTable(w io.Writer, cs []*statev1.Component, now time.Time) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tRUNTIME\tDESIRED\tREPLICAS\tMIN/MAX\tDEPLOYMENT\tUPDATED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\n",
			c.GetName(), runtimeName(c.GetRuntime()), desiredName(c.GetDesired()), c.GetReplicas(),
			c.GetSpec().GetScaleMin(), c.GetSpec().GetScaleMax(),
			orDash(shortID(c.GetActiveDeploymentId())), age(c.GetUpdateTime().AsTime(), now, c.GetUpdateTime() != nil))
	}
	return tw.Flush()
}

// printComponent writes one component as "Key: value" lines.
func printComponent(w io.Writer, c *statev1.Component, now time.Time) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	s := c.GetSpec()
	row("Name", c.GetName())
	row("ID", c.GetId())
	if c.GetOwner() != "" {
		row("Owner", c.GetOwner())
	}
	row("Runtime", runtimeName(c.GetRuntime()))
	row("Source", sourceString(c.GetSource()))
	row("Desired", desiredName(c.GetDesired()))
	// Where each setting comes from: the manifest, or a user's change (which deploys keep).
	u := c.GetUser()
	if u == nil {
		u = &statev1.UserSettings{}
	}
	from := func(user bool) string {
		switch {
		case user:
			return " (user)"
		case c.GetManifestSpec() != nil:
			return " (manifest)"
		}
		return ""
	}
	row("Replicas", fmt.Sprintf("%d (min %d%s, max %d%s)", c.GetReplicas(), s.GetScaleMin(), from(u.ScaleMin != nil), s.GetScaleMax(), from(u.ScaleMax != nil)))
	row("Exclusive", fmt.Sprintf("%t", s.GetExclusive()))
	row("Concurrency", zeroDefault(s.GetConcurrency())+from(u.Concurrency != nil))
	row("Memory", formatMemory(s.GetMemoryBytes())+from(u.MemoryBytes != nil))
	row("Body", formatMemory(s.GetBodyBytes()))
	timeout := "default"
	if ms := s.GetTimeoutMs(); ms > 0 {
		timeout = (time.Duration(ms) * time.Millisecond).String()
	}
	row("Timeout", timeout+from(u.TimeoutMs != nil))
	if wasm := s.GetWasm(); wasm != nil {
		if wasm.GetModule() != "" {
			row("Wasm module", wasm.GetModule())
		}
		if wasm.GetBuild() != "" {
			row("Wasm build", wasm.GetBuild())
		}
		if wasm.GetAbi() != "" {
			row("Wasm ABI", wasm.GetAbi())
		}
		if wasm.GetReuse() != 0 {
			row("Wasm reuse", strconv.FormatUint(uint64(wasm.GetReuse()), 10))
		}
	}
	if ctr := s.GetContainer(); ctr != nil {
		if ctr.GetImage() != "" {
			row("Image", ctr.GetImage())
		}
		if len(ctr.GetCommand()) > 0 {
			row("Command", fmt.Sprintf("%q", ctr.GetCommand()))
		}
	}
	row("Deployment", orDash(c.GetActiveDeploymentId()))
	if e := c.GetSpecError(); e != "" {
		row("Last change", "FAILED: "+e)
	}
	if len(s.GetEnv()) == 0 {
		row("Env", "-")
	} else {
		keys := make([]string, 0, len(s.GetEnv()))
		for k := range s.GetEnv() {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			label := ""
			if i == 0 {
				label = "Env:"
			}
			_, user := u.GetEnv()[k]
			fmt.Fprintf(tw, "%s\t%s=%s%s\n", label, k, s.GetEnv()[k], from(user))
		}
	}
	if c.GetCreateTime() != nil {
		row("Created", fmt.Sprintf("%s (%s)", c.GetCreateTime().AsTime().Local().Format(time.RFC3339), age(c.GetCreateTime().AsTime(), now, true)))
	}
	if c.GetUpdateTime() != nil {
		row("Updated", fmt.Sprintf("%s (%s)", c.GetUpdateTime().AsTime().Local().Format(time.RFC3339), age(c.GetUpdateTime().AsTime(), now, true)))
	}
	row("Index", fmt.Sprintf("created %d, modified %d", c.GetCreateIndex(), c.GetModifyIndex()))
	return tw.Flush()
}

func runtimeName(r statev1.Runtime) string {
	return enumWord(r.String(), "RUNTIME_")
}

func desiredName(d statev1.DesiredState) string {
	return enumWord(d.String(), "DESIRED_STATE_")
}

// enumWord turns "NODE_STATUS_READY" into "ready"; unspecified values print as "-".
func enumWord(s, prefix string) string {
	s = strings.ToLower(strings.TrimPrefix(s, prefix))
	if s == "unspecified" || s == "" {
		return "-"
	}
	return s
}

func sourceString(s *statev1.Source) string {
	if s.GetGithubRepo() == "" {
		return "upload"
	}
	return fmt.Sprintf("github.com/%s@%s", s.GetGithubRepo(), s.GetBranch())
}

func zeroDefault(n uint32) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortID keeps the first 12 characters of a long id, as docker does.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// age says how long ago t was, in the largest unit: "12s ago", "5m ago", "3h ago", "2d ago".
func age(t, now time.Time, ok bool) string {
	if !ok {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

func plural(n uint32, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// actionCmd is a command of one argument that sends it to one procedure and says what was
// done (did, with the argument for its verb), or prints the answer with --json.
func (a *app) actionCmd(use, short, arg, did string, call func(ctx context.Context, arg string) (connect.AnyResponse, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use + " " + arg,
		Short: short,
		Args:  exactArgs(arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := call(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.report(cmd, res.Any().(proto.Message), did, args[0])
		},
	}
}
