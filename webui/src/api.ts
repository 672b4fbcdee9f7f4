// One Connect transport to the API of the node that served the console (same origin), and a
// client per service. Every call carries the signed-in token (auth.ts).
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { bearer } from "./auth";
import { ACLService } from "./gen/v9/acl/v1/acl_pb";
import { ClusterService } from "./gen/v9/cluster/v1/cluster_pb";
import { ComponentService } from "./gen/v9/component/v1/component_pb";
import { DeployService } from "./gen/v9/deploy/v1/deploy_pb";
import { GitHubService } from "./gen/v9/github/v1/github_pb";
import { LogService } from "./gen/v9/logs/v1/logs_pb";
import { StatsService } from "./gen/v9/stats/v1/stats_pb";

export const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});

export const api = {
  acl: createClient(ACLService, transport),
  components: createClient(ComponentService, transport),
  cluster: createClient(ClusterService, transport),
  deploy: createClient(DeployService, transport),
  github: createClient(GitHubService, transport),
  logs: createClient(LogService, transport),
  stats: createClient(StatsService, transport),
};
