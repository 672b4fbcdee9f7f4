// The pages' Connect clients, on api.ts's transport; kept apart from api.ts so that their
// generated code loads with the pages that use it, not with the sign-in page.
import { createClient } from "@connectrpc/connect";
import { transport } from "./api";
import { ComponentService } from "./gen/v9/component/v1/component_pb";
import { DeployService } from "./gen/v9/deploy/v1/deploy_pb";
import { GitHubService } from "./gen/v9/github/v1/github_pb";
import { LogService } from "./gen/v9/logs/v1/logs_pb";

export const clients = {
  components: createClient(ComponentService, transport),
  deploy: createClient(DeployService, transport),
  github: createClient(GitHubService, transport),
  logs: createClient(LogService, transport),
};
