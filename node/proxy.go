package node

import (
	"net"
	"net/http"
	"strings"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// serveProxy answers the proxy port. Until executors exist no instance can run, so a known
// component gets 503 and an unknown one 404, routed by Host (<name>.<domain>) or first path
// segment, exactly as the routing proxy will.
func (n *Node) serveProxy(w http.ResponseWriter, r *http.Request) {
	name := componentFromRequest(r)
	c, err := n.fsm.Store.Component(name)
	if name == "" || err != nil {
		http.Error(w, "no component "+quote(name)+" on this cluster", http.StatusNotFound)
		return
	}
	w.Header().Set("Retry-After", "5")
	if c.Desired == statev1.DesiredState_DESIRED_STATE_PAUSED {
		http.Error(w, "component "+quote(name)+" is paused", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, "component "+quote(name)+" has no running instance", http.StatusServiceUnavailable)
}

func componentFromRequest(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if i := strings.IndexByte(host, '.'); i > 0 && net.ParseIP(host) == nil {
		return host[:i]
	}
	seg := strings.TrimPrefix(r.URL.Path, "/")
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		seg = seg[:i]
	}
	return seg
}

func quote(s string) string { return "\"" + s + "\"" }
