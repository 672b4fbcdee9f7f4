package server

import (
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/github/v1/githubv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/logs/v1/logsv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/secret/v1/secretv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/stats/v1/statsv1connect"
	"github.com/velocity9/v9/webui"
)

// Backend is everything a node offers the API.
type Backend interface {
	ComponentBackend
	ClusterBackend
	InternalBackend
	DeployBackend
	ObserveBackend
	ACLBackend
	SecretBackend
	// UserGitHub serves GitHubService (package ghub, with the caller's own GitHub grant).
	UserGitHub() githubv1connect.GitHubServiceHandler
}

// MaxMessageBytes bounds one RPC message a node reads (an upload chunk is 256 KiB). A
// larger one is refused before it is buffered.
const MaxMessageBytes = 4 << 20

// NewMux mounts every service, gRPC health, gRPC reflection and the web console (at /) on one
// mux, each call checked by authz (auth.Procedures says what every procedure needs).
func NewMux(b Backend, authz *auth.Authorizer) *http.ServeMux {
	guard := connect.WithInterceptors(authz.Interceptor())
	opts := []connect.HandlerOption{
		guard,
		connect.WithReadMaxBytes(MaxMessageBytes),
		// Small messages cost more CPU to gzip than they save on a LAN.
		connect.WithCompressMinBytes(8 << 10),
	}
	mux := http.NewServeMux()
	mux.Handle(componentv1connect.NewComponentServiceHandler(&Components{B: b}, opts...))
	mux.Handle(clusterv1connect.NewClusterServiceHandler(&Cluster{B: b}, opts...))
	mux.Handle(clusterv1connect.NewInternalServiceHandler(&Internal{B: b}, opts...))
	mux.Handle(deployv1connect.NewDeployServiceHandler(&Deploy{B: b}, opts...))
	mux.Handle(aclv1connect.NewACLServiceHandler(&ACL{B: b}, opts...))
	mux.Handle(deployv1connect.NewArtifactServiceHandler(&Artifacts{B: b}, opts...))
	mux.Handle(logsv1connect.NewLogServiceHandler(&Logs{B: b}, opts...))
	mux.Handle(statsv1connect.NewStatsServiceHandler(&Stats{B: b}, opts...))
	mux.Handle(secretv1connect.NewSecretServiceHandler(&Secrets{B: b}, opts...))
	mux.Handle(githubv1connect.NewGitHubServiceHandler(b.UserGitHub(), opts...))
	services := []string{
		componentv1connect.ComponentServiceName,
		clusterv1connect.ClusterServiceName,
		clusterv1connect.InternalServiceName,
		deployv1connect.DeployServiceName,
		deployv1connect.ArtifactServiceName,
		logsv1connect.LogServiceName,
		statsv1connect.StatsServiceName,
		aclv1connect.ACLServiceName,
		secretv1connect.SecretServiceName,
		githubv1connect.GitHubServiceName,
	}
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(services...), guard))
	reflector := grpcreflect.NewStaticReflector(append(services, grpchealth.HealthV1ServiceName)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, guard))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, guard))
	// The web console, on the same origin as the API; the services' paths are more specific.
	// Its files are public; every call it makes carries a token.
	mux.Handle("/", webui.Handler())
	return mux
}
