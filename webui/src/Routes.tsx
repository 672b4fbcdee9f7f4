// The console's pages behind the sign-in page, with the Connect transport connect-query uses:
// one chunk loaded after the shell (App.tsx), each page its own chunk within it.
import { TransportProvider } from "@connectrpc/connect-query";
import { lazy } from "react";
import { Link, Route, Switch } from "wouter";
import { transport } from "./api";
import { Empty } from "./ui/Notice";

const ComponentsPage = lazy(() => import("./pages/Components").then((m) => ({ default: m.ComponentsPage })));
const ComponentPage = lazy(() => import("./pages/Component").then((m) => ({ default: m.ComponentPage })));
const NodesPage = lazy(() => import("./pages/Nodes").then((m) => ({ default: m.NodesPage })));
const StartPage = lazy(() => import("./pages/Start").then((m) => ({ default: m.StartPage })));
const TokensPage = lazy(() => import("./pages/Tokens").then((m) => ({ default: m.TokensPage })));
const AuditPage = lazy(() => import("./pages/Tokens").then((m) => ({ default: m.AuditPage })));

export default function Routes() {
  return (
    <TransportProvider transport={transport}>
      <Switch>
        <Route path="/" component={ComponentsPage} />
        <Route path="/components/:name">{(p) => <ComponentPage key={p.name} name={decodeURIComponent(p.name)} />}</Route>
        <Route path="/nodes" component={NodesPage} />
        <Route path="/start" component={StartPage} />
        <Route path="/tokens" component={TokensPage} />
        <Route path="/audit" component={AuditPage} />
        <Route>
          <Empty title="This page does not exist">
            <p>
              <Link href="/">Go to the components</Link>
            </p>
          </Empty>
        </Route>
      </Switch>
    </TransportProvider>
  );
}
