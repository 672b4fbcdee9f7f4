// Live data: blocking queries (the API's min_index/wait_ms read options, as Consul's) that
// return as soon as the cluster's state moves past what the page shows, so a change committed
// on any node is on screen within a round trip. Errors back off and retry, and say so.
import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";
import { navigate } from "wouter/use-browser-location";

/** How long one blocking read may wait on the server before it answers unchanged. */
export const waitMs = 25_000;

/** Sends the user to sign in, to come back to where they are. */
export function toSignIn(): void {
  const here = window.location.pathname + window.location.search;
  if (window.location.pathname === "/signin") return;
  performance.mark("v9:to-signin");
  navigate(`/signin?next=${encodeURIComponent(here)}`, { replace: true });
}

/** Handles what every failed call shares: an expired or missing sign-in. */
export function onApiError(err: unknown): void {
  if (err instanceof ConnectError && err.code === Code.Unauthenticated) toSignIn();
}

export interface Live<T> {
  data?: T;
  error?: unknown; // the last error, cleared by the next success
  retrying: boolean; // an error happened and the next attempt is scheduled
}

/**
 * Keeps data fresh with blocking reads. fetch(minIndex, signal) must return once the state
 * index reaches minIndex (or its wait ends) with the index it read at. deps restart the loop.
 * A loop of blocking reads is a stream of answers: useStream retries it.
 */
export function useBlocking<T extends { index: bigint }>(
  fetch: (minIndex: bigint, signal: AbortSignal) => Promise<T>,
  deps: unknown[],
): Live<T> {
  return useStream<T, T>(
    async function* (signal) {
      let index = 0n;
      while (!signal.aborted) {
        const r = await fetch(index === 0n ? 0n : index + 1n, signal);
        if (r.index > index || index === 0n) {
          index = r.index;
          yield r;
        }
      }
    },
    (_, r) => r,
    deps,
  );
}

/**
 * Keeps data fresh from a server stream: open(signal) starts the stream, apply folds each
 * message into the data (the stream's first message must stand alone). A stream that ends or
 * fails is opened again, with backoff; errors are shown until the next message. deps restart it.
 */
export function useStream<S, M>(open: (signal: AbortSignal) => AsyncIterable<M>, apply: (data: S | undefined, msg: M) => S, deps: unknown[]): Live<S> {
  const [state, setState] = useState<Live<S>>({ retrying: false });
  useEffect(() => {
    const ctl = new AbortController();
    let failures = 0;
    setState({ retrying: false });
    (async () => {
      while (!ctl.signal.aborted) {
        try {
          for await (const msg of open(ctl.signal)) {
            if (ctl.signal.aborted) return;
            failures = 0;
            setState((s) => ({ data: apply(s.data, msg), retrying: false }));
          }
          if (ctl.signal.aborted) return;
          failures++; // the stream ended (its node stopping): open it again
        } catch (err) {
          if (ctl.signal.aborted) return;
          onApiError(err);
          if (err instanceof ConnectError && (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied || err.code === Code.NotFound)) {
            setState((s) => ({ ...s, error: err, retrying: false }));
            return;
          }
          failures++;
          setState((s) => ({ ...s, error: err, retrying: true }));
        }
        await sleep(Math.min(500 * 2 ** (failures - 1), 8000), ctl.signal);
      }
    })();
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return state;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** The current time, updated every period, for ages that must keep counting. */
export function useNow(periodMs = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), periodMs);
    return () => clearInterval(t);
  }, [periodMs]);
  return now;
}
