import { useQuery } from "@connectrpc/connect-query";
import { ClusterService } from "../gen/v9/cluster/v1/cluster_pb";
import { proxyURL } from "../start";

/** The URL of component name on the proxy of the node that serves this console. */
export function useProxyURL(name: string): string {
  const q = useQuery(ClusterService.method.status, {}, { staleTime: 60_000 });
  const me = q.data?.members.find((m) => m.id === q.data?.nodeId);
  return proxyURL(me?.proxyAddr ?? "", window.location, name);
}

export function ProxyLink({ name }: { name: string }) {
  const url = useProxyURL(name);
  if (!url) return <span className="sub">—</span>;
  return (
    <a href={url} target="_blank" rel="noreferrer">
      {url}
    </a>
  );
}
