// Package container runs v9's container components with containerd (the "container"
// runtime): it imports or pulls an OCI image, runs one container per placement with the
// component's files read-only at /app, PORT in the environment, a memory limit, no new
// privileges and containerd's default seccomp profile, and forwards HTTP to the port.
//
// Containers live in one containerd namespace ("v9" by default) and carry labels: the
// placement, the node, the component, the deployment and the artifact digest. An Executor
// touches only containers labelled with its own node id, so several nodes can share one
// containerd (v9 dev), and after an agent restart it adopts its running containers
// instead of starting them again.
//
// Each container runs in a network namespace of its own (network.go), attached through the
// CNI plugins (bridge, host-local, loopback; Debian's containernetworking-plugins) to a
// bridge v9 owns (v9br0, 10.209.0.0/16 by default). It listens on its own address at
// $PORT (8080), and the executor proxies to that address. A firewall (firewall.go) fences
// it off the control plane: it cannot open a connection to the host on any address (so to
// no node's API, Raft port or proxy), to another container, or to 169.254.0.0/16, and it
// reaches everything else through masquerade. Without the plugins or iptables New fails:
// a container never falls back to the host's network.
//
// This package never restarts a crashed container (the node's reconciler does, with
// backoff) and never touches containers, images or namespaces it did not label, nor
// firewall rules outside its own chains (V9-*-<bridge>) and the jumps to them.
package container
