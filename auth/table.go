package auth

import (
	"connectrpc.com/grpchealth"

	"github.com/velocity9/v9/rpc/gen/v9/acl/v1/aclv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/cluster/v1/clusterv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/component/v1/componentv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/deploy/v1/deployv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/github/v1/githubv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/logs/v1/logsv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/secret/v1/secretv1connect"
	"github.com/velocity9/v9/rpc/gen/v9/stats/v1/statsv1connect"
)

// Access is what a procedure asks of its caller.
type Access struct {
	// Open procedures need nothing (health, the one-time bootstrap).
	Open bool
	// Node procedures need a node certificate of the cluster CA (InternalService, artifact
	// fetch, join): no token is enough.
	Node bool
	// Role is the least role a token needs; a node certificate passes any role.
	Role Role
}

var (
	open      = Access{Open: true}
	nodeOnly  = Access{Node: true}
	viewer    = Access{Role: RoleViewer}
	developer = Access{Role: RoleDeveloper}
	admin     = Access{Role: RoleAdmin}
)

// Reflection procedures (grpcreflect): they describe the API, so they need a token.
const (
	reflectV1      = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	reflectV1Alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
)

// Procedures maps every Connect procedure a node serves to what it needs. A procedure
// missing from it is refused (deny by default), and a test fails when the generated
// service descriptors hold one it lacks.
var Procedures = map[string]Access{
	// health stays open for load balancers and probes
	"/" + grpchealth.HealthV1ServiceName + "/Check": open,
	"/" + grpchealth.HealthV1ServiceName + "/Watch": open,
	reflectV1:      viewer,
	reflectV1Alpha: viewer,

	aclv1connect.ACLServiceBootstrapProcedure:   open, // once per cluster, then refused
	aclv1connect.ACLServiceWhoAmIProcedure:      viewer,
	aclv1connect.ACLServiceCreateTokenProcedure: viewer, // a role no higher than the caller's
	aclv1connect.ACLServiceListTokensProcedure:  viewer, // others' tokens: admin only
	aclv1connect.ACLServiceRevokeTokenProcedure: viewer, // others' tokens: admin only
	aclv1connect.ACLServiceAuditProcedure:       admin,
	// GitHub login bindings say who holds a listed login: an admin's business.
	aclv1connect.ACLServiceListGitHubBindingsProcedure:  admin,
	aclv1connect.ACLServiceDeleteGitHubBindingProcedure: admin,
	// how to sign in, asked before anyone is signed in
	aclv1connect.ACLServiceAuthMethodsProcedure: open,
	// verifies the GitHub token with GitHub itself and checks the allowed users and orgs
	aclv1connect.ACLServiceGitHubLoginProcedure: open,

	clusterv1connect.ClusterServiceStatusProcedure:     viewer,
	clusterv1connect.ClusterServiceNodesProcedure:      viewer,
	clusterv1connect.ClusterServiceJoinProcedure:       nodeOnly,
	clusterv1connect.ClusterServiceRemovePeerProcedure: admin,
	clusterv1connect.ClusterServiceDrainProcedure:      admin,
	// an operator snapshot holds every secret of the state (hashed tokens, webhook
	// secrets), and a restore replaces the whole state
	clusterv1connect.ClusterServiceSnapshotSaveProcedure:    admin,
	clusterv1connect.ClusterServiceSnapshotRestoreProcedure: admin,

	clusterv1connect.InternalServiceDiscoverProcedure:  nodeOnly,
	clusterv1connect.InternalServiceApplyProcedure:     nodeOnly,
	clusterv1connect.InternalServiceReadIndexProcedure: nodeOnly,
	clusterv1connect.InternalServiceHeartbeatProcedure: nodeOnly,
	// the keyring's root keys: node certificates only, never a token of any role
	clusterv1connect.InternalServiceKeysProcedure: nodeOnly,

	componentv1connect.ComponentServiceGetProcedure:        viewer,
	componentv1connect.ComponentServiceListProcedure:       viewer,
	componentv1connect.ComponentServiceWatchProcedure:      viewer,
	componentv1connect.ComponentServiceCreateProcedure:     developer,
	componentv1connect.ComponentServiceUpdateSpecProcedure: developer,
	componentv1connect.ComponentServicePauseProcedure:      developer,
	componentv1connect.ComponentServiceResumeProcedure:     developer,
	componentv1connect.ComponentServiceScaleProcedure:      developer,
	componentv1connect.ComponentServiceDeleteProcedure:     developer,

	deployv1connect.DeployServiceUploadProcedure:   developer,
	deployv1connect.DeployServiceRollbackProcedure: developer,
	deployv1connect.DeployServiceWatchProcedure:    viewer,
	deployv1connect.DeployServiceListProcedure:     viewer,
	deployv1connect.DeployServiceBuildLogProcedure: viewer,
	deployv1connect.ArtifactServiceFetchProcedure:  nodeOnly,

	logsv1connect.LogServiceTailProcedure:      viewer,
	statsv1connect.StatsServiceSeriesProcedure: viewer,

	// values go in and never come out; listing names them only
	secretv1connect.SecretServiceSetProcedure:    developer,
	secretv1connect.SecretServiceListProcedure:   developer,
	secretv1connect.SecretServiceDeleteProcedure: developer,

	// read with the caller's own GitHub grant (what the caller can see on GitHub anyway); a
	// viewer cannot link what it would list, so the Start page is for developers
	githubv1connect.GitHubServiceListRepositoriesProcedure: developer,
	githubv1connect.GitHubServiceListBranchesProcedure:     developer,
	githubv1connect.GitHubServiceCheckManifestProcedure:    developer,
}
