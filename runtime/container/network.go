package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/containerd/containerd/pkg/netns"
	gocni "github.com/containerd/go-cni"
	cnins "github.com/containernetworking/plugins/pkg/ns"
)

// Defaults of Network's zero values.
const (
	DefaultBridge   = "v9br0"
	DefaultNetState = "/run/v9/net"
)

// DefaultSubnet is the containers' subnet when Network.Subnet is not set: a range that
// few networks use, on a bridge that exists only on this machine.
var DefaultSubnet = netip.MustParsePrefix("10.209.0.0/16")

// DefaultPluginDirs are where the CNI plugins are looked for: Debian's
// containernetworking-plugins, then the upstream layout.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// ErrNoNetwork says that the containers' network cannot be set up here (no CNI plugins,
// no iptables, not root). The executor refuses to start rather than fall back to the
// host's network.
var ErrNoNetwork = errors.New("container network unavailable")

// Network configures the containers' network: each container gets its own network
// namespace on a bridge v9 owns, with outbound access through masquerade and a firewall
// that keeps it off the host and off the other containers (see firewall.go).
type Network struct {
	// Bridge is the Linux bridge the containers attach to. Default "v9br0".
	Bridge string
	// Subnet is the containers' IPv4 subnet; the bridge takes its first address as the
	// containers' gateway. Default 10.209.0.0/16.
	Subnet netip.Prefix
	// PluginDirs are searched for the CNI plugins bridge, host-local and loopback.
	// Default DefaultPluginDirs.
	PluginDirs []string
	// StateDir holds the network namespaces' mount points and the address leases. Several
	// executors (nodes) that share a bridge must share it. Default /run/v9/net.
	StateDir string
	// Pool is how many namespaces, connected to the bridge, each executor keeps ready for
	// its next starts (netpool.go). 0: DefaultNetPool; negative: none.
	Pool int
	// Deny are more destinations the containers may not reach, beyond the host, the other
	// containers and link-local addresses (169.254.0.0/16): the other nodes' network, for
	// example.
	Deny []netip.Prefix
}

var bridgeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)

func (n Network) withDefaults() (Network, error) {
	if n.Bridge == "" {
		n.Bridge = DefaultBridge
	}
	if !bridgeName.MatchString(n.Bridge) {
		return n, fmt.Errorf("container network: bad bridge name %q (letters, digits, ._-, at most 15)", n.Bridge)
	}
	if !n.Subnet.IsValid() {
		n.Subnet = DefaultSubnet
	}
	n.Subnet = n.Subnet.Masked()
	if !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 29 {
		return n, fmt.Errorf("container network: subnet %s must be IPv4 and hold at least 8 addresses", n.Subnet)
	}
	if len(n.PluginDirs) == 0 {
		n.PluginDirs = DefaultPluginDirs
	}
	if n.StateDir == "" {
		n.StateDir = DefaultNetState
	}
	if n.Pool == 0 {
		n.Pool = DefaultNetPool
	}
	n.Pool = max(n.Pool, 0)
	return n, nil
}

// network attaches containers to the bridge: a new network namespace per container, set
// up and torn down through the CNI plugins.
type network struct {
	cfg     Network
	gateway netip.Addr
	nsDir   string
	cni     gocni.CNI
	log     *slog.Logger

	bridgeOnce sync.Once

	pool       chan pooledNS
	poolMu     sync.Mutex
	refilling  bool
	refillDone chan struct{}
	closed     bool
}

// newNetwork checks that the CNI plugins are there, installs the firewall and returns the
// network. Errors wrap ErrNoNetwork.
func newNetwork(cfg Network, nodeID string, log *slog.Logger) (*network, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: network namespaces, the bridge and its firewall need root", ErrNoNetwork)
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if !pluginExists(cfg.PluginDirs, plugin) {
			return nil, fmt.Errorf("%w: CNI plugin %q not found in %v (apt-get install containernetworking-plugins)", ErrNoNetwork, plugin, cfg.PluginDirs)
		}
	}
	n := &network{
		cfg:     cfg,
		gateway: cfg.Subnet.Addr().Next(),
		// One directory per node: a node collects only its own leftovers (gc).
		nsDir: filepath.Join(cfg.StateDir, "netns", containerID(nodeID, "netns")),
		log:   log,
		pool:  make(chan pooledNS, cfg.Pool),
	}
	for _, d := range []string{n.nsDir, filepath.Join(cfg.StateDir, "ipam")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoNetwork, err)
		}
	}
	if err := installFirewall(cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoNetwork, err)
	}
	conf, err := n.confList()
	if err != nil {
		return nil, err
	}
	n.cni, err = gocni.New(
		gocni.WithPluginDir(cfg.PluginDirs),
		gocni.WithInterfacePrefix("eth"),
		gocni.WithConfListBytes(conf), // first: its interface is eth0
		gocni.WithLoNetwork,
	)
	if err != nil {
		return nil, fmt.Errorf("%w: CNI: %w", ErrNoNetwork, err)
	}
	return n, nil
}

func pluginExists(dirs []string, name string) bool {
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// confList is the CNI configuration: the bridge plugin as the containers' gateway, without
// its own masquerade (the firewall has one rule for the whole subnet), and host-local
// leases in StateDir.
func (n *network) confList() ([]byte, error) {
	type obj = map[string]any
	return json.Marshal(obj{
		"cniVersion": "1.0.0",
		"name":       "v9-" + n.cfg.Bridge,
		"plugins": []obj{{
			"type":        "bridge",
			"bridge":      n.cfg.Bridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": false,
			"ipam": obj{
				"type":    "host-local",
				"ranges":  [][]obj{{{"subnet": n.cfg.Subnet.String(), "gateway": n.gateway.String()}}},
				"routes":  []obj{{"dst": "0.0.0.0/0"}},
				"dataDir": filepath.Join(n.cfg.StateDir, "ipam"),
			},
		}},
	})
}

// newNS creates a network namespace for a container, not yet connected, and returns its
// path. Its name (a random cni-UUID) is its CNI container id: unique, and all detach needs.
func (n *network) newNS() (string, error) {
	ns, err := netns.NewNetNS(n.nsDir)
	if err != nil {
		return "", fmt.Errorf("create network namespace: %w", err)
	}
	return ns.GetPath(), nil
}

// setup connects the namespace at nsPath to the bridge and returns the container's
// address. After an error the caller still detaches.
func (n *network) setup(ctx context.Context, nsPath string) (netip.Addr, error) {
	res, err := n.cni.Setup(ctx, filepath.Base(nsPath), nsPath)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("connect the container to %s: %w", n.cfg.Bridge, err)
	}
	if eth := res.Interfaces["eth0"]; eth != nil {
		for _, c := range eth.IPConfigs {
			if a, ok := netip.AddrFromSlice(c.IP); ok && a.Unmap().Is4() {
				n.bridgeOnce.Do(n.bridgeSysctls)
				return a.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("connect the container to %s: the bridge plugin gave eth0 no IPv4 address", n.cfg.Bridge)
}

// attach is newNS and setup in one, undone on failure.
func (n *network) attach(ctx context.Context) (string, netip.Addr, error) {
	nsPath, err := n.newNS()
	if err != nil {
		return "", netip.Addr{}, err
	}
	ip, err := n.setup(ctx, nsPath)
	if err != nil {
		if derr := n.detach(context.WithoutCancel(ctx), nsPath); derr != nil {
			n.log.Warn("tear down a network namespace after a failed setup", "netns", nsPath, "err", derr)
		}
		return "", netip.Addr{}, err
	}
	return nsPath, ip, nil
}

// addr reads the IPv4 address of eth0 inside the namespace at nsPath: how an adopted
// container's address is found again.
func (n *network) addr(nsPath string) (netip.Addr, error) {
	var ip netip.Addr
	err := netns.LoadNetNS(nsPath).Do(func(cnins.NetNS) error {
		eth, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := eth.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				ip = p.Addr()
				return nil
			}
		}
		return errors.New("eth0 has no IPv4 address")
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address in network namespace %s: %w", nsPath, err)
	}
	return ip, nil
}

// detach disconnects the namespace at nsPath from the bridge, frees its address and
// removes the namespace. Detaching twice, or a namespace already gone, is not an error;
// a path outside the executor's namespace directory is left alone.
func (n *network) detach(ctx context.Context, nsPath string) error {
	if nsPath == "" {
		return nil
	}
	if filepath.Dir(nsPath) != n.nsDir {
		return fmt.Errorf("network namespace %s is not in %s: left alone", nsPath, n.nsDir)
	}
	// A namespace no longer mounted: CNI DEL with no path still frees the address.
	path := nsPath
	if _, err := os.Stat(nsPath); errors.Is(err, os.ErrNotExist) {
		path = ""
	}
	if err := n.cni.Remove(ctx, filepath.Base(nsPath), path); err != nil {
		return fmt.Errorf("disconnect the container from %s: %w", n.cfg.Bridge, err)
	}
	if path == "" {
		return nil
	}
	if err := netns.LoadNetNS(nsPath).Remove(); err != nil {
		return fmt.Errorf("remove network namespace: %w", err)
	}
	return nil
}

// bridgeSysctls turns IPv6 off on the bridge once the plugin has created it: containers
// get IPv4 only, and no link-local IPv6 address of the host's answers them.
func (n *network) bridgeSysctls() {
	p := filepath.Join("/proc/sys/net/ipv6/conf", n.cfg.Bridge, "disable_ipv6")
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Warn("turn IPv6 off on the containers' bridge", "bridge", n.cfg.Bridge, "err", err)
	}
}
