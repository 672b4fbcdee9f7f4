// One Connect transport to the API of the node that served the console (same origin), for the
// pages' generated clients (clients.ts) and connect-query. Every call carries the signed-in
// token (auth.ts). The first page's calls go without generated code (rpc.ts).
import { createConnectTransport } from "@connectrpc/connect-web";
import { bearer } from "./auth";

export const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});
