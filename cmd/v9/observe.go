package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/velocity9/v9/observe"
	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
)

func newLogsCmd(a *app) *cobra.Command {
	var (
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:   "logs COMPONENT",
		Short: "Show a component's logs from every node, merged by time",
		Long: `Show a component's recent log lines from every node, merged by time: its instances'
stdout and stderr, the proxies' access lines and system events. Each line reads

  TIME NODE STREAM INSTANCE TEXT

With -f, keep printing new lines as they come until interrupted (Ctrl-C). With --json,
print one JSON object per line (JSON lines).`,
		Example: `  v9 logs hello
  v9 logs hello -f -n 20
  v9 logs hello --json | jq -r .text`,
		Args: exactArgs("COMPONENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines < 1 {
				return usageError{fmt.Errorf("-n %d: want 1 or more lines", lines)}
			}
			ctx := cmd.Context()
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			stream, err := a.client().Logs.Tail(ctx, connect.NewRequest(&logsv1.TailRequest{
				Component: args[0],
				Lines:     uint32(lines),
				Follow:    follow,
			}))
			if err != nil {
				return err
			}
			defer stream.Close()
			p := &logPrinter{w: cmd.OutOrStdout(), json: a.json}
			for stream.Receive() {
				for _, l := range stream.Msg().GetLines() {
					if err := p.print(l); err != nil {
						return err
					}
				}
			}
			if follow && ctx.Err() != nil {
				return nil // interrupted: the normal end of -f
			}
			return stream.Err()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	f.IntVarP(&lines, "lines", "n", 100, "how many recent lines to start with")
	return cmd
}

// logPrinter writes log lines as text columns or JSON lines. The node and instance columns
// are as wide as the widest value seen so far, so columns line up while following.
type logPrinter struct {
	w                    io.Writer
	json                 bool
	nodeWidth, instWidth int
}

func (p *logPrinter) print(l *logsv1.LogLine) error {
	if p.json {
		b, err := protojson.Marshal(l)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	node, inst := orDash(l.GetNodeId()), orDash(l.GetInstance())
	p.nodeWidth = max(p.nodeWidth, len(node))
	p.instWidth = max(p.instWidth, len(inst))
	ts := "--:--:--.---"
	if l.GetTime() != nil {
		ts = l.GetTime().AsTime().Local().Format("15:04:05.000")
	}
	prefix := fmt.Sprintf("%s %-*s %-6s %-*s ", ts, p.nodeWidth, node, orDash(l.GetStream()), p.instWidth, inst)
	var b strings.Builder
	for _, text := range strings.Split(strings.TrimRight(l.GetText(), "\r\n"), "\n") {
		b.WriteString(prefix)
		b.WriteString(strings.TrimRight(text, "\r"))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

func newStatsCmd(a *app) *cobra.Command {
	var minutes int
	cmd := &cobra.Command{
		Use:   "stats COMPONENT",
		Short: "Show a component's requests, status classes and latency, summed over every node",
		Long: `Show a component's requests in 10-second buckets, summed over every node that answers:
the buckets that saw requests, then the totals, with latency average, p50, p99 and maximum
(p50 and p99 estimated from the nodes' latency histograms). With --json, print the whole
series, empty buckets included. The same command is "v9 stats" and "v9 component stats".`,
		Args: exactArgs("COMPONENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if minutes < 1 || minutes > 24*60 {
				return usageError{fmt.Errorf("--minutes %d: want 1 to 1440 (24 hours)", minutes)}
			}
			res, err := a.client().Stats.Series(cmd.Context(), connect.NewRequest(&statsv1.SeriesRequest{
				Component: args[0],
				Minutes:   uint32(minutes),
			}))
			if done, err := a.printed(cmd, res, err); done {
				return err
			}
			return printStats(cmd.OutOrStdout(), res.Msg, minutes, time.Now())
		},
	}
	cmd.Flags().IntVar(&minutes, "minutes", 60, "how far back to look, in minutes (at most 1440)")
	return cmd
}

func printStats(w io.Writer, s *statsv1.SeriesResponse, minutes int, now time.Time) error {
	from := "no node answered"
	if len(s.GetNodes()) > 0 {
		from = "from " + strings.Join(s.GetNodes(), ", ")
	}
	var total statsv1.Bucket
	var buckets []*statsv1.Bucket
	for _, b := range s.GetBuckets() {
		if b.GetRequests() == 0 {
			continue
		}
		buckets = append(buckets, b)
		total.Requests += b.GetRequests()
		total.Status_2Xx += b.GetStatus_2Xx()
		total.Status_3Xx += b.GetStatus_3Xx()
		total.Status_4Xx += b.GetStatus_4Xx()
		total.Status_5Xx += b.GetStatus_5Xx()
		total.LatencySumMs += b.GetLatencySumMs()
		total.LatencyMaxMs = max(total.LatencyMaxMs, b.GetLatencyMaxMs())
		// Histograms add up across buckets: the total's percentiles come from their sum.
		if h := b.GetLatencyHistogram(); len(h) > 0 {
			if len(total.LatencyHistogram) < len(h) {
				total.LatencyHistogram = append(total.LatencyHistogram, make([]uint64, len(h)-len(total.LatencyHistogram))...)
			}
			for i, c := range h {
				total.LatencyHistogram[i] += c
			}
		}
	}
	total.LatencyP50Ms = observe.PercentileWith(s.GetLatencyBoundsMs(), total.LatencyHistogram, 0.5, total.LatencyMaxMs)
	total.LatencyP99Ms = observe.PercentileWith(s.GetLatencyBoundsMs(), total.LatencyHistogram, 0.99, total.LatencyMaxMs)
	if len(buckets) == 0 {
		_, err := fmt.Fprintf(w, "No requests to %s in the last %d minutes (%s).\n", s.GetComponent(), minutes, from)
		return err
	}
	if _, err := fmt.Fprintf(w, "%s: requests in the last %d minutes, %d s buckets, %s\n\n", s.GetComponent(), minutes, s.GetBucketSeconds(), from); err != nil {
		return err
	}
	layout := "15:04:05"
	if first := time.Unix(buckets[0].GetStartUnix(), 0).Local(); first.Format(time.DateOnly) != now.Local().Format(time.DateOnly) {
		layout = "01-02 15:04:05" // the series starts on another day
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tREQ\t2xx\t3xx\t4xx\t5xx\tAVG ms\tP50 ms\tP99 ms\tMAX ms")
	row := func(label string, b *statsv1.Bucket) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", label, b.GetRequests(), b.GetStatus_2Xx(), b.GetStatus_3Xx(),
			b.GetStatus_4Xx(), b.GetStatus_5Xx(), b.GetLatencySumMs()/float64(max(b.GetRequests(), 1)), b.GetLatencyP50Ms(), b.GetLatencyP99Ms(), b.GetLatencyMaxMs())
	}
	for _, b := range buckets {
		row(time.Unix(b.GetStartUnix(), 0).Local().Format(layout), b)
	}
	row("TOTAL", &total)
	return tw.Flush()
}
