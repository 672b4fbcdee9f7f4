// The first page's load, cold, measured in the browser and broken down: what the console's
// budget "first page interactive ≤ 1 s" counts. Each load is in a new browser context (an
// empty HTTP cache, no storage, no cookies: a fresh profile); console.mjs runs it first, and
// it runs alone too:
//
//   V9_CONSOLE=http://127.0.0.1:7900 node webui/e2e/firstpage.mjs
//
// The page asked for is /start, signed out: the console finds out from the API that nobody is
// signed in and sends the user to /signin?next=%2Fstart, whose sign-in control is the first
// thing they can use. "Interactive" is the console's own mark "v9:interactive", set once that
// page has rendered its controls with their handlers attached (after React's commit); the time
// counts from the navigation's start (the browser's time origin), so it includes the HTML's
// request, the script's fetch, parse and evaluation, the API calls and the renders.
import { pathToFileURL } from "node:url";

/**
 * Loads base + "/start" in page (a fresh profile's first page) and returns the breakdown, in
 * milliseconds from the navigation's start.
 */
export async function measureFirstPage(page, base, timeout = 15_000) {
  await page.goto(`${base}/start`, { waitUntil: "commit", timeout });
  await page.waitForURL(/\/signin\?next=%2Fstart/, { timeout });
  await page.waitForFunction(() => performance.getEntriesByName("v9:interactive").length > 0, null, { timeout });
  return page.evaluate(() => {
    const r = (x) => Math.round(x);
    const nav = performance.getEntriesByType("navigation")[0];
    const marks = Object.fromEntries(performance.getEntriesByType("mark").map((m) => [m.name, r(m.startTime)]));
    const paint = Object.fromEntries(performance.getEntriesByType("paint").map((p) => [p.name, r(p.startTime)]));
    const resources = performance.getEntriesByType("resource").map((e) => ({
      name: new URL(e.name).pathname,
      start: r(e.startTime),
      end: r(e.responseEnd),
      bytes: e.transferSize,
      body: e.decodedBodySize,
    }));
    return {
      interactive: marks["v9:interactive"],
      html: { request: r(nav.requestStart), firstByte: r(nav.responseStart), end: r(nav.responseEnd), bytes: nav.transferSize },
      domInteractive: r(nav.domInteractive),
      domContentLoaded: r(nav.domContentLoadedEventEnd),
      marks,
      paint,
      resources,
    };
  });
}

/** One line per part of the breakdown, as the Go test prints them. */
export function describe(m) {
  const lines = [`measure first_page_interactive_ms ${m.interactive} (cold: empty cache and storage; /start signed out → /signin; from navigation start)`];
  lines.push(`  html: request sent ${m.html.request} ms, first byte ${m.html.firstByte} ms, done ${m.html.end} ms (${m.html.bytes} B)`);
  for (const e of m.resources) lines.push(`  fetch ${e.name}: ${e.start}–${e.end} ms (${e.bytes} B on the wire, ${e.body} B)`);
  lines.push(`  DOM interactive ${m.domInteractive} ms, DOMContentLoaded ${m.domContentLoaded} ms`);
  const says = {
    "v9:modules-evaluated": "the entry script fetched, parsed and evaluated",
    "v9:to-signin": "WhoAmI refused: client-side redirect to /signin",
    "v9:interactive": "sign-in page rendered, its controls live",
  };
  for (const [k, v] of Object.entries(m.marks).sort((a, b) => a[1] - b[1])) lines.push(`  mark ${k} ${v} ms${says[k] ? ` (${says[k]})` : ""}`);
  for (const [k, v] of Object.entries(m.paint)) lines.push(`  paint ${k} ${v} ms`);
  return lines.join("\n");
}

/**
 * Launches its own Chromium and loads the first page cold `runs` times, each in a new browser
 * context (an empty HTTP cache, no cookies, no storage: a fresh profile), and returns the
 * breakdowns and the median's. The browser's own start is not counted; the first run is also
 * the browser's first navigation.
 */
export async function measureColdLoads(base, { executablePath, args, runs = 3, timeout = 15_000 }) {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath, headless: true, args });
  try {
    const all = [];
    for (let i = 0; i < runs; i++) {
      const ctx = await browser.newContext();
      try {
        all.push(await measureFirstPage(await ctx.newPage(), base, timeout));
      } finally {
        await ctx.close();
      }
    }
    const sorted = [...all].sort((a, b) => a.interactive - b.interactive);
    return { all, median: sorted[Math.floor(sorted.length / 2)] };
  } finally {
    await browser.close();
  }
}

/** The budget's lines: the median run's breakdown, then every run's figure. */
export function describeCold({ all, median }) {
  const js = (m) => Math.max(0, ...m.resources.filter((e) => e.name.endsWith(".js")).map((e) => e.end));
  const runs = all.map(
    (m, i) =>
      `  run ${i + 1}: ${m.interactive} ms (html sent ${m.html.request}, script fetched ${js(m)}, evaluated ${m.marks["v9:modules-evaluated"]}, ` +
      `redirect ${m.marks["v9:to-signin"]}, interactive ${m.interactive})`,
  );
  return `${describe(median)}\n  runs, each in a new empty context (the first is also the browser's first page); the median is the figure:\n${runs.join("\n")}`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const base = process.env.V9_CONSOLE;
  if (!base) {
    console.error("firstpage.mjs: set V9_CONSOLE");
    process.exit(2);
  }
  const r = await measureColdLoads(base, {
    executablePath: process.env.V9_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"],
    runs: Number(process.env.V9_RUNS ?? "3"),
  });
  console.log(describeCold(r));
}
