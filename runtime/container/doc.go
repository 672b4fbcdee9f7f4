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
// Containers share the host's network namespace: a container listens on 127.0.0.1:$PORT
// (and on every other address it binds) and the executor proxies to 127.0.0.1:$PORT. That
// keeps cold starts short and needs no CNI plugins; it also means a container is no more
// isolated on the network than a host process.
//
// This package never restarts a crashed container (the node's reconciler does, with
// backoff) and never touches containers, images or namespaces it did not label.
package container
