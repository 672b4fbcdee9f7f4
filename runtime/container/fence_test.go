package container

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/pkg/netns"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
)

// TestNetworkFence starts two containers and checks the fence from inside the first: it
// cannot open a connection to listeners standing in for the node's API, Raft port and proxy
// on any of the host's addresses (the bridge's gateway included), nor to the second
// container, while the host (the executor's proxy) reaches both containers and the first
// one's request to a server outside the host — in a network namespace the test makes —
// goes out, masqueraded.
func TestNetworkFence(t *testing.T) {
	e := newExecutor(t, "node-fence")
	a := startInstance(t, e, testSpec(t, "p-fence-a", nil))
	specB := testSpec(t, "p-fence-b", nil)
	specB.Component = "other"
	b := startInstance(t, e, specB)

	// The node's ports, listening on every address of the host as an agent may.
	var ports []int
	for _, what := range []string{"api", "raft", "proxy"} {
		l, err := net.Listen("tcp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go serveLine(l, what)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	hostAddrs := []netip.Addr{e.net.gateway}
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range ifAddrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && p.Addr() != e.net.gateway {
			hostAddrs = append(hostAddrs, p.Addr())
		}
	}
	var blocked []string
	for _, h := range hostAddrs {
		for _, p := range ports {
			blocked = append(blocked, netip.AddrPortFrom(h, uint16(p)).String())
		}
	}
	// 127.0.0.1 is the container's own loopback, where no node listens.
	blocked = append(blocked, "127.0.0.1:"+strconv.Itoa(ports[0]), b.(*instance).addr)

	// Controls: from the host, the listeners answer on the gateway address and the second
	// container answers on its own.
	for _, addr := range []string{blocked[0], b.(*instance).addr} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("control: the host cannot reach %s: %v", addr, err)
		}
		c.Close()
	}

	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	for _, addr := range blocked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := get(a, "/dial?addr="+url.QueryEscape(addr))
			if code != http.StatusBadGateway {
				mu.Lock()
				failed = append(failed, fmt.Sprintf("%s: %d %s", addr, code, strings.TrimSpace(body)))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("the container reached what the fence should keep it from:\n%s", strings.Join(failed, "\n"))
	}
	t.Logf("refused from the container: %v", blocked)

	// Outbound works: a server on an address of a network namespace of the test's own.
	srvURL := outsideServer(t)
	code, body := get(a, "/fetch?url="+url.QueryEscape(srvURL))
	if code != http.StatusOK || !strings.Contains(body, "hello from outside") {
		t.Fatalf("outbound GET %s from the container = %d %q", srvURL, code, body)
	}
	if !strings.Contains(body, "198.18.7.1:") {
		t.Errorf("outbound request not masqueraded behind the host: %q", body)
	}

	// Link-local (cloud metadata, 169.254.169.254) is dropped: checked on the rules, since
	// a request there would leave this machine if the rule were missing.
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		t.Fatal(err)
	}
	br := e.net.cfg.Bridge
	if ok, err := ipt.Exists("filter", "V9-FWD-"+br, "-i", br, "-d", "169.254.0.0/16", "-j", "DROP"); err != nil || !ok {
		t.Errorf("no rule drops link-local destinations: %v %v", ok, err)
	}
}

// outsideServer serves HTTP on 198.18.7.2 in a network namespace the test creates, linked
// to the host by a veth pair (host end 198.18.7.1), and returns its URL. The server
// answers with the address it sees the request come from.
func outsideServer(t *testing.T) string {
	t.Helper()
	pid := os.Getpid() % 1000000
	name, hostIf, peerIf := fmt.Sprintf("v9t-out-%d", pid), fmt.Sprintf("v9to%d", pid), fmt.Sprintf("v9tp%d", pid)
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "netns", "del", name).Run() // left by a crashed run
	ipCmd("netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() }) // takes the veth pair along
	ipCmd("link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", name)
	ipCmd("addr", "add", "198.18.7.1/30", "dev", hostIf)
	ipCmd("link", "set", hostIf, "up")
	ipCmd("-n", name, "addr", "add", "198.18.7.2/30", "dev", peerIf)
	ipCmd("-n", name, "link", "set", peerIf, "up")
	ipCmd("-n", name, "link", "set", "lo", "up")

	var l net.Listener
	err := netns.LoadNetNS("/var/run/netns/" + name).Do(func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp4", "198.18.7.2:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from outside, you are "+r.RemoteAddr+"\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/"
}

// TestLeakedNamespacesCollected: a namespace that an agent left connected (pooled, or of a
// start cut short by a crash) is disconnected and removed when the node's next executor
// starts, and its address lease is freed; the pool is refilled and emptied on Close.
func TestLeakedNamespacesCollected(t *testing.T) {
	e1 := newExecutor(t, "node-gc")
	ctx := t.Context()
	leaked, ip, err := e1.net.attach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e1.net.waitRefill()
	if n := len(e1.net.pool); n != DefaultNetPool {
		t.Errorf("pool holds %d namespaces, want %d", n, DefaultNetPool)
	}
	e1.Close()
	if n := len(e1.net.pool); n != 0 {
		t.Errorf("pool holds %d namespaces after Close", n)
	}
	lease := filepath.Join(e1.net.cfg.StateDir, "ipam", "v9-"+e1.net.cfg.Bridge, ip.String())
	if _, err := os.Stat(lease); err != nil {
		t.Fatalf("the leaked namespace has no lease: %v", err)
	}
	e2 := newExecutor(t, "node-gc")
	if _, err := os.Stat(leaked); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leaked namespace %s still there: %v", leaked, err)
	}
	if _, err := os.Stat(lease); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease %s of the leaked namespace still there: %v", lease, err)
	}
	e2.net.waitRefill()
}

// TestNetworkFenceMembers: the node ports of cluster members on other machines — stood in
// for by listeners in a network namespace of the test's own, reached over a veth pair —
// are fenced as the member list says: a port of a member cannot be reached from a
// container, another port on the same address can, and once the member is gone from the
// list its port is reachable again.
func TestNetworkFenceMembers(t *testing.T) {
	e := newExecutor(t, "node-members")
	a := startInstance(t, e, testSpec(t, "p-members", nil))
	srvURL := outsideServer(t) // http://198.18.7.2:PORT/: the member's API
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	member := netip.MustParseAddrPort(u.Host)
	name := fmt.Sprintf("v9t-out-%d", os.Getpid()%1000000)
	var other net.Listener // a port of the same machine that is no node port
	if err := netns.LoadNetNS("/var/run/netns/" + name).Do(func(ns.NetNS) error {
		other, err = net.Listen("tcp4", "198.18.7.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	go serveLine(other, "other")
	dial := func(addr string) int {
		code, _ := get(a, "/dial?addr="+url.QueryEscape(addr))
		return code
	}
	if code := dial(member.String()); code != http.StatusOK {
		t.Fatalf("control: before the fence the member port answers %d", code)
	}
	if err := e.FenceMembers([]netip.AddrPort{member, netip.MustParseAddrPort("10.0.0.9:7900")}); err != nil {
		t.Fatal(err)
	}
	if code := dial(member.String()); code != http.StatusBadGateway {
		t.Errorf("a member's node port reached from a container: %d", code)
	}
	if code := dial(other.Addr().String()); code != http.StatusOK {
		t.Errorf("another port of the member's machine: %d, want reachable", code)
	}
	if err := e.FenceMembers(nil); err != nil { // the member left the cluster
		t.Fatal(err)
	}
	if code := dial(member.String()); code != http.StatusOK {
		t.Errorf("after the member left, its port answers %d", code)
	}
}

// TestRemoveFirewall: RemoveFirewall takes away every rule and chain v9 installed for a
// bridge (IPv4 and IPv6, the members' chain included), and nothing of another bridge's; a
// second call finds nothing to do.
func TestRemoveFirewall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for iptables")
	}
	br, other := fmt.Sprintf("v9tx%d", os.Getpid()%1000000), fmt.Sprintf("v9ty%d", os.Getpid()%1000000)
	for _, b := range []string{br, other} {
		cfg := testNetwork()
		cfg.Bridge = b
		if err := installFirewall(cfg); err != nil {
			t.Fatal(err)
		}
		if err := fenceMembers(b, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:7000")}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { RemoveFirewall(other) })
	dump := func(cmd string) string {
		var all []string
		for _, table := range []string{"filter", "nat"} {
			out, err := exec.Command(cmd, "-t", table).Output()
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, string(out))
		}
		return strings.Join(all, "\n")
	}
	otherRules := grepLines(dump("iptables-save"), other)
	if !strings.Contains(dump("iptables-save"), "V9-MBR-"+br) || !strings.Contains(otherRules, "-A V9-MBR-"+other) {
		t.Fatal("the firewalls were not installed")
	}
	for range 2 {
		if err := RemoveFirewall(br); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
			if d := dump(cmd); strings.Contains(d, br) {
				t.Fatalf("left after RemoveFirewall (%s):\n%s", cmd, grepLines(d, br))
			}
		}
	}
	if got := grepLines(dump("iptables-save"), other); got != otherRules {
		t.Errorf("another bridge's rules changed:\n%s\nwere:\n%s", got, otherRules)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// serveLine answers every connection to l with line and a newline, until l is closed.
func serveLine(l net.Listener, line string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(line + "\n"))
		c.Close()
	}
}
