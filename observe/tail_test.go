package observe

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	logsv1 "github.com/velocity9/v9/rpc/gen/v9/logs/v1"
	statsv1 "github.com/velocity9/v9/rpc/gen/v9/stats/v1"
)

// breakingPeers is n2 whose follow stream breaks after its recent lines, then answers them
// again with a new line, as a stream that broke without a restart does; n3 is down.
type breakingPeers struct {
	mu    sync.Mutex
	calls int
}

func (p *breakingPeers) TailLogs(ctx context.Context, addr string, _ *logsv1.TailRequest, emit func(*logsv1.TailResponse) error) error {
	if addr != "n2:7900" {
		return errors.New("unreachable")
	}
	p.mu.Lock()
	p.calls++
	n := p.calls
	p.mu.Unlock()
	line := func(sec int64, seq uint64, text string) *logsv1.LogLine {
		return &logsv1.LogLine{NodeId: "n2", Seq: seq, Text: text, Time: timestamppb.New(time.Unix(sec, 0))}
	}
	if n == 1 {
		if err := emit(&logsv1.TailResponse{Lines: []*logsv1.LogLine{line(1, 1, "one")}}); err != nil {
			return err
		}
		return errors.New("stream broke")
	}
	if err := emit(&logsv1.TailResponse{Lines: []*logsv1.LogLine{line(1, 1, "one"), line(2, 2, "two")}}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (p *breakingPeers) Series(context.Context, string, *statsv1.SeriesRequest) (*statsv1.SeriesResponse, error) {
	return nil, errors.New("unused")
}

// A follow tail asks a node whose stream broke again and skips the lines it already sent.
func TestTailResumesANodeWithoutRepeats(t *testing.T) {
	s, _, _ := service(t, &breakingPeers{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	err := s.TailLogs(ctx, &logsv1.TailRequest{Component: "hello", Follow: true}, func(r *logsv1.TailResponse) error {
		for _, l := range r.Lines {
			got = append(got, l.Text)
		}
		if slices.Contains(got, "two") {
			cancel()
		}
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("tail: %q %v, want one, two", got, err)
	}
}
