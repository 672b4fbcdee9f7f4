package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/velocity9/v9/deploy"
	deployv1 "github.com/velocity9/v9/rpc/gen/v9/deploy/v1"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
)

// upload packs dir and sends it to n's DeployService.Upload, as `v9 deploy` does.
func upload(ctx context.Context, n *Node, dir string) (*deployv1.UploadResponse, error) {
	var buf bytes.Buffer
	if _, err := deploy.Pack(dir, &buf); err != nil {
		return nil, err
	}
	cli := deployv1connect.NewDeployServiceClient(TestHTTPClient, "http://"+n.APIAddr())
	stream := cli.Upload(ctx)
	if err := stream.Send(&deployv1.UploadRequest{Part: &deployv1.UploadRequest_Meta{Meta: &deployv1.UploadMeta{CommitMessage: "test", Size: int64(buf.Len())}}}); err != nil {
		return nil, err
	}
	for b := buf.Bytes(); len(b) > 0; {
		k := min(len(b), 64<<10)
		if err := stream.Send(&deployv1.UploadRequest{Part: &deployv1.UploadRequest_Chunk{Chunk: b[:k]}}); err != nil {
			break // the server answered early; CloseAndReceive has its error
		}
		b = b[k:]
	}
	resp, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func mustUpload(t *testing.T, n *Node, dir string) *deployv1.UploadResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := upload(ctx, n, dir)
	if err != nil {
		t.Fatalf("upload via %s: %v", n.ID(), err)
	}
	return resp
}

var plainHTTP = &http.Client{Timeout: 10 * time.Second}

// proxyGet sends GET path to a node's proxy with the given Host.
func proxyGet(n *Node, host, path string) (int, string, http.Header, error) {
	req, _ := http.NewRequest("GET", "http://"+n.ProxyAddr()+path, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := plainHTTP.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

// quiet drops the nodes' logs, for benchmarks.
func quiet(c *TestCluster) {
	for _, n := range c.Nodes {
		n.log = slog.New(slog.DiscardHandler)
	}
}

// follower returns a live node that does not lead, and its index in c.Nodes.
func follower(t *testing.T, c *TestCluster) (*Node, int) {
	t.Helper()
	f := c.Follower(t)
	for i, n := range c.Nodes {
		if n == f {
			return f, i
		}
	}
	t.Fatal("the follower is not in the cluster's nodes")
	return nil, 0
}

// others returns the cluster's nodes but the one at index skip.
func others(c *TestCluster, skip int) []*Node {
	var out []*Node
	for i, n := range c.Nodes {
		if i != skip {
			out = append(out, n)
		}
	}
	return out
}
