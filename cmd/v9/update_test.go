package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/node"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// TestCLIUpdateKeepsAConcurrentEdit: two users change one component at once — one runs
// `v9 component update shared --max 3`, the other sets an env variable (the console's
// Settings, another CLI) between the CLI's read of the spec and its write. The CLI sends the
// modify index it read (UpdateSpecRequest.if_modify_index): the node refuses the stale write
// (Aborted), the CLI reads again and redoes its edit, and both changes hold.
func TestCLIUpdateKeepsAConcurrentEdit(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := "http://" + c.Nodes[0].APIAddr()
	other := componentv1connect.NewComponentServiceClient(node.TestHTTPClient, api)
	if _, err := other.Create(ctx, connect.NewRequest(&componentv1.CreateRequest{
		Name: "shared", Runtime: statev1.Runtime_RUNTIME_WASM,
		Spec: &statev1.ComponentSpec{ScaleMin: 0, ScaleMax: 1, Env: map[string]string{"A": "1"}},
	})); err != nil {
		t.Fatalf("create: %v", err)
	}
	// The other user's edit lands just before the CLI's first UpdateSpec reaches the node.
	target, _ := url.Parse(api)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	var once sync.Once
	var editErr error
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/UpdateSpec") {
			once.Do(func() {
				cur, err := other.Get(ctx, connect.NewRequest(&componentv1.GetRequest{Name: "shared"}))
				if err != nil {
					editErr = err
					return
				}
				s := cur.Msg.Component.Spec
				s.Env["B"] = "2"
				_, editErr = other.UpdateSpec(ctx, connect.NewRequest(&componentv1.UpdateSpecRequest{Name: "shared", Spec: s}))
			})
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	r := runCLIWithin(t, 45*time.Second, "--addr", proxy.URL, "component", "update", "shared", "--max", "3", "--no-wait")
	if editErr != nil {
		t.Fatalf("the other user's edit: %v", editErr)
	}
	got := getComponent(t, c.Nodes[0].APIAddr(), "shared").GetSpec()
	if r.code != 0 {
		t.Fatalf("the CLI failed instead of reading the changed component again and redoing its edit: %s", r)
	}
	if got.GetEnv()["B"] != "2" || got.GetScaleMax() != 3 {
		t.Fatalf("both users were told their change was saved, but the component holds env %v, max %d: the concurrent env change B=2 was lost (CLI: %s)",
			got.GetEnv(), got.GetScaleMax(), r)
	}
}
