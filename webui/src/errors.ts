// API errors in words, with what to do about them.
import { Code, ConnectError } from "@connectrpc/connect";

export interface Explained {
  title: string;
  detail: string;
  action: string;
  code?: Code;
}

export function explain(err: unknown): Explained {
  const e = ConnectError.from(err);
  const detail = e.rawMessage || "no details";
  if (/failed to fetch|networkerror|load failed/i.test(detail)) {
    return {
      code: Code.Unavailable,
      title: "This node does not answer",
      detail,
      action: "Check that the node serving this page is running; the console retries by itself.",
    };
  }
  switch (e.code) {
    case Code.Unauthenticated:
      return { code: e.code, title: "Sign-in needed", detail, action: "Sign in again with an API token (v9 acl bootstrap, or ask an admin for one)." };
    case Code.PermissionDenied:
      return { code: e.code, title: "Not allowed", detail, action: "Your token's role cannot do this. Ask an admin for a token with a higher role." };
    case Code.NotFound:
      return { code: e.code, title: "Not found", detail, action: "It may have been deleted. Go back to the list and reload." };
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return { code: e.code, title: "Not accepted", detail, action: "Change the value and try again." };
    case Code.Aborted:
      // A conditional write (if_modify_index) refused: what it was edited from changed.
      return { code: e.code, title: "Changed by someone else", detail, action: "Nothing was saved. Reload, then make your change again." };
    case Code.FailedPrecondition:
    case Code.AlreadyExists:
      return { code: e.code, title: "Cannot do that now", detail, action: "The component or cluster is in another state; reload and try again." };
    case Code.Unavailable:
      return {
        code: e.code,
        title: "The cluster is unreachable or has no leader",
        detail,
        action: "Check that this node is running (v9 cluster status). Changes need a Raft leader; the console retries by itself.",
      };
    case Code.DeadlineExceeded:
      return { code: e.code, title: "Timed out", detail, action: "The cluster was slow to answer. Try again." };
    case Code.Canceled:
      return { code: e.code, title: "Cancelled", detail, action: "Try again." };
    default:
      return { code: e.code, title: "Something went wrong", detail, action: "Try again; if it keeps failing, see the node's log." };
  }
}

export function isCode(err: unknown, code: Code): boolean {
  return err instanceof ConnectError && err.code === code;
}
