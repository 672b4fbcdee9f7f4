import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { getToken, hadSession } from "./auth";
import { App, preloadPage } from "./App";
import { authMethodsQuery, identityQuery } from "./identity";
import { onApiError } from "./live";
import "./styles.css";

performance.mark("v9:modules-evaluated");

const queryClient = new QueryClient({
  queryCache: new QueryCache({ onError: onApiError }),
  mutationCache: new MutationCache({ onError: onApiError }),
  defaultOptions: {
    queries: { retry: 2, refetchOnWindowFocus: true },
  },
});

// Started at once, side by side: who the caller is (which decides whether the page shows or the
// user is sent to sign in), the ways to sign in (what the sign-in page needs) and, when this tab
// has signed in before, the code of the page asked for.
const known =
  window.location.pathname === "/signin" ? Promise.resolve() : queryClient.prefetchQuery(identityQuery());
if (window.location.pathname !== "/signin" && (getToken() || hadSession())) preloadPage(window.location.pathname);
void queryClient.prefetchQuery(authMethodsQuery);

// The first render waits (a moment at most) until the caller is known: a signed-out visitor's
// first render is then the sign-in page itself, not the shell and then the sign-in page.
// Until then the page shows index.html's static "Loading".
void Promise.race([known, new Promise((resolve) => setTimeout(resolve, 300))]).then(() =>
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  ),
);
