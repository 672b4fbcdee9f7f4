// End-to-end test of the console in a real Chromium (Debian's, never a downloaded one),
// driven by playwright-core. Run by cmd/v9's TestNoRaceConsoleBrowser against a real
// three-node cluster and the fake GitHub: V9_REPO (a repository of octocat holding the
// hello-wasm example) is started from the Start page after a GitHub sign-in, V9_UPLOADED was
// deployed by upload, and V9_CONTROL asks the test to kill/restart a node or push a commit.
//
//   V9_CONSOLE=http://127.0.0.1:7900 V9_PROXY=http://127.0.0.1:8080 V9_COMPONENT=hello \
//   V9_REPO=octocat/hello-v9 V9_NODES=3 V9_OUT=/tmp/shots V9_TOKEN=... node webui/e2e/console.mjs
//
// It prints one "measure NAME VALUE" line per budget and saves a screenshot per page in V9_OUT.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { describeCold, measureColdLoads } from "./firstpage.mjs";

const base = need("V9_CONSOLE");
const proxy = need("V9_PROXY");
const component = process.env.V9_COMPONENT ?? "hello";
const nodes = Number(process.env.V9_NODES ?? "3");
const out = need("V9_OUT");
const chromiumPath = process.env.V9_CHROMIUM ?? "/usr/bin/chromium";
const token = need("V9_TOKEN"); // an admin token of the cluster
const repo = need("V9_REPO");
const uploaded = process.env.V9_UPLOADED ?? "";
const control = process.env.V9_CONTROL;
const timeout = 15_000;

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`console.mjs: set ${name}`);
    process.exit(2);
  }
  return v;
}

function step(s) {
  console.log(`step ${s}`);
}

async function proxyStatus(path = "") {
  const r = await fetch(`${proxy}/${component}/${path}`);
  await r.arrayBuffer();
  return r.status;
}

async function waitFor(what, f, ms = timeout) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await f();
      if (last === true) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

// A Connect unary call in JSON, as any client may make; resolves once the write is committed.
async function call(service, method, body, as = token) {
  const r = await fetch(`${base}/${service}/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(as ? { Authorization: `Bearer ${as}` } : {}) },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method}: ${r.status} ${await r.text()}`);
  return r.json();
}

const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

// The first-page budget first, before this script's own browser runs, with its breakdown.
const load = loadavg();
console.log(describeCold(await measureColdLoads(base, { executablePath: chromiumPath, args: chromiumArgs })));
console.log(`  load average while measuring: ${load.map((x) => x.toFixed(1)).join(" ")} on ${cpus().length} cores`);

const profile = mkdtempSync(join(tmpdir(), "v9-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  args: chromiumArgs,
  viewport: { width: 1280, height: 860 },
});
const problems = [];
let failed = false;
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // Streams and blocking reads cut short by a navigation are not failures.
    if (!/ERR_ABORTED/.test(r.failure()?.errorText ?? "")) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });

  const row = page.locator(`tr[data-component="${component}"]`);

  step("signed out: the Start page sends the user to sign in with GitHub, and back");
  await page.goto(`${base}/start`);
  await page.waitForURL(/\/signin\?next=%2Fstart/);
  await page.getByRole("link", { name: "Sign in with GitHub" }).waitFor();
  // The refused read that sent us here is expected.
  problems.length = 0;
  await page.screenshot({ path: join(out, "signin.png"), fullPage: true });
  await page.getByRole("link", { name: "Sign in with GitHub" }).click();
  await page.waitForURL(/\/start$/);
  await page.getByText("octocat (developer)").waitFor();

  step("Start: the user's repositories, a branch, whether it has a v9.toml");
  await page.locator('[data-repo="octocat/dotfiles"]').click();
  await page.getByTestId("manifest").getByText("No v9.toml on main").waitFor();
  if (await page.getByRole("button", { name: "Start", exact: true }).isEnabled()) throw new Error("Start is enabled for a branch without v9.toml");
  await page.locator(`[data-repo="${repo}"]`).click();
  await page.getByLabel("Branch").waitFor();
  await page.getByTestId("manifest").getByText("v9.toml found").waitFor();
  if ((await page.getByLabel("Component name").inputValue()) !== component) throw new Error("the component name is not the manifest's");
  await page.screenshot({ path: join(out, "start.png"), fullPage: true });

  step("press Start: webhook, build log streaming, the component answering");
  const t0 = Date.now();
  await page.getByRole("button", { name: "Start", exact: true }).click();
  await page.getByText(`Linked ${repo}@main`).waitFor();
  await page.locator(".logs li.log-build").first().waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(out, "start-building.png"), fullPage: true });
  await page.getByTestId("live-url").waitFor({ timeout: 60_000 });
  await page.frameLocator("iframe.answer").locator("body", { hasText: "hello from wasm" }).waitFor();
  console.log(`measure start_to_answering_ms ${Date.now() - t0}`);
  await page.locator(".logs li.log-build", { hasText: "ready: artifact" }).waitFor();
  await page.screenshot({ path: join(out, "start-done.png"), fullPage: true });
  if ((await proxyStatus()) !== 200) throw new Error("the started component does not answer through the proxy");

  step("components page lists the component");
  await page.goto(`${base}/`);
  await row.waitFor();
  const interactive = await page.evaluate(() => performance.now());
  console.log(`measure components_page_interactive_ms ${interactive.toFixed(0)} (assets cached)`);
  await row.getByText("running").waitFor();
  await row.getByText(`${repo}@main`).waitFor();
  if (uploaded) await page.locator(`tr[data-component="${uploaded}"]`).getByText("upload", { exact: true }).waitFor();
  await page.locator(`tr[data-component="${component}"] svg.spark`).waitFor();
  await page.screenshot({ path: join(out, "components.png"), fullPage: true });

  step("component page opens from the list");
  await row.getByRole("link", { name: component }).click();
  await page.getByRole("heading", { level: 1, name: new RegExp(component) }).waitFor();
  await page.getByRole("heading", { name: "Deployments" }).waitFor();
  await page.locator("tr[data-deployment]").first().waitFor();

  step("push a new commit: the fake GitHub's webhook deploys it, the history shows it");
  const first = page.locator("tr[data-deployment]", { hasText: "first commit" });
  const second = page.locator("tr[data-deployment]", { hasText: "second commit" });
  await first.locator(".tag", { hasText: "active" }).waitFor();
  const pushed = await (await fetch(`${control}/push`)).text();
  if (!/^[0-9a-f]{40}$/.test(pushed)) throw new Error(`push: ${pushed}`);
  await second.locator(".tag", { hasText: "active" }).waitFor({ timeout: 60_000 });
  await second.locator(`a[href$="${pushed}"]`).waitFor();

  step("rollback to the first commit");
  await first.getByRole("button", { name: /Roll back/ }).click();
  await first.locator(".tag", { hasText: "active" }).waitFor();
  await second.getByRole("button", { name: /Roll back/ }).waitFor();
  await waitFor("the first deployment to serve", async () => (await proxyStatus()) === 200);

  step("pause: the proxy answers 503");
  await page.getByRole("button", { name: "Pause", exact: true }).click();
  await page.getByRole("button", { name: "Resume" }).waitFor();
  await page.locator("h1 .badge", { hasText: "paused" }).waitFor();
  await waitFor("the proxy to answer 503", async () => (await proxyStatus()) === 503);

  step("resume: the proxy answers 200");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.getByRole("button", { name: "Pause", exact: true }).waitFor();
  await waitFor("the proxy to answer 200", async () => (await proxyStatus()) === 200);

  step("logs stream a request's line");
  await page.locator(".conn-live").waitFor();
  const marker = `console-e2e-${Date.now()}`;
  await waitFor("the request's log line", async () => {
    await proxyStatus(marker);
    return (await page.locator(".logs li", { hasText: marker }).count()) > 0;
  });

  step("hits graph counts requests");
  await page.locator(".summary strong").first().waitFor();
  await waitFor("requests in the graph", async () => {
    const t = await page.locator(".summary strong").first().innerText();
    return Number.parseFloat(t) > 0;
  }, 20_000);
  await page.screenshot({ path: join(out, "component.png"), fullPage: true });

  step("secrets: set and delete, values write-only");
  const secretValue = `s3cret-${Date.now()}`;
  await page.getByLabel("Name", { exact: true }).fill("API_KEY");
  await page.getByLabel("Value", { exact: true }).fill(secretValue);
  await page.getByRole("button", { name: "Set secret" }).click();
  await page.locator('tr[data-secret="API_KEY"]').waitFor();
  if ((await page.getByLabel("Value", { exact: true }).inputValue()) !== "") throw new Error("the secret value stays in the form");
  if ((await page.content()).includes(secretValue)) throw new Error("the page shows a secret's value");
  await page.screenshot({ path: join(out, "secrets.png"), fullPage: true });
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Delete secret API_KEY" }).click();
  await page.locator('tr[data-secret="API_KEY"]').waitFor({ state: "detached" });

  step("a status change committed elsewhere shows within a second");
  const samples = [];
  for (let i = 0; i < 3; i++) {
    for (const [method, want] of [
      ["Pause", "paused"],
      ["Resume", "running"],
    ]) {
      await call("v9.component.v1.ComponentService", method, { name: component });
      const t0 = Date.now();
      await page.locator("h1 .badge", { hasText: want }).waitFor();
      samples.push(Date.now() - t0);
    }
  }
  samples.sort((a, b) => a - b);
  console.log(`measure status_change_visible_ms_max ${samples[samples.length - 1]}`);
  console.log(`measure status_change_visible_ms_median ${samples[Math.floor(samples.length / 2)]}`);

  step("narrow screen (375 px) and dark mode render");
  await page.setViewportSize({ width: 375, height: 800 });
  await page.emulateMedia({ colorScheme: "dark" });
  const rb = await page.getByRole("button", { name: /Roll back/ }).first().boundingBox();
  if (!rb || rb.x < 0 || rb.x + rb.width > 375) throw new Error(`at 375 px the Rollback button is cut off: ${JSON.stringify(rb)}`);
  await page.screenshot({ path: join(out, "component-375-dark.png"), fullPage: true });
  await page.locator(".logs").screenshot({ path: join(out, "logs-375-dark.png") });
  console.log(`logs: ${await page.locator(".logs li").count()} lines shown`);
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1280, height: 860 });

  step(`nodes page shows ${nodes} nodes`);
  await page.getByRole("link", { name: "Nodes" }).click();
  await page.getByRole("heading", { level: 1, name: "Nodes" }).waitFor();
  await waitFor(`${nodes} ready nodes`, async () => (await page.locator("tr[data-node] .badge", { hasText: "ready" }).count()) === nodes);
  await page.locator(".tag", { hasText: "leader" }).waitFor();
  await page.screenshot({ path: join(out, "nodes.png"), fullPage: true });

  if (control) {
    step("a killed node shows as down, then ready after its restart");
    const id = await (await fetch(`${control}/kill`)).text();
    await page.locator(`tr[data-node="${id}"] .badge`, { hasText: "down" }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(out, "nodes-down.png"), fullPage: true });
    await fetch(`${control}/restart`);
    await page.locator(`tr[data-node="${id}"] .badge`, { hasText: "ready" }).waitFor({ timeout: 20_000 });
    // Reads that reached the killed node's peers while it was gone may have failed; the page
    // retried them, which is the point.
    for (let i = problems.length - 1; i >= 0; i--) if (/ClusterService\/(Nodes|Status)|status of 50\d/.test(problems[i])) problems.splice(i, 1);
  }

  step("sign out of GitHub; an API token signs in, a wrong one is refused");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/signin/);
  await page.goto(`${base}/nodes`);
  await page.waitForURL(/\/signin\?next=%2Fnodes/);
  problems.length = 0;
  await page.getByLabel("API token").fill("v9s_not-a-token");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.locator("#token-error").waitFor();
  problems.length = 0;
  await page.screenshot({ path: join(out, "signin-refused.png"), fullPage: true });
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(/\/nodes$/);
  await page.getByRole("heading", { level: 1, name: "Nodes" }).waitFor();

  {
    step("tokens and audit pages (admin)");
    await page.getByRole("link", { name: "Tokens" }).click();
    await page.getByRole("heading", { level: 1, name: "API tokens" }).waitFor();
    await page.getByLabel("Name").fill("e2e-viewer");
    await page.getByLabel("Role").selectOption("viewer");
    await page.getByRole("button", { name: "Create token" }).click();
    const viewerSecret = (await page.getByTestId("new-secret").innerText()).trim();
    await page.locator('tr[data-token="e2e-viewer"]').waitFor();
    await page.screenshot({ path: join(out, "tokens.png"), fullPage: true });
    step("revoking a token asks once more, then the list shows it revoked");
    await page.getByLabel("Name").fill("e2e-revoke");
    await page.getByRole("button", { name: "Create token" }).click();
    const revokeRow = page.locator('tr[data-token="e2e-revoke"]');
    await revokeRow.waitFor();
    await revokeRow.getByRole("button", { name: "Revoke…" }).click();
    await revokeRow.getByRole("button", { name: "Cancel" }).click();
    await revokeRow.getByRole("button", { name: "Revoke…" }).click();
    await revokeRow.getByRole("button", { name: "Revoke e2e-revoke" }).click();
    await revokeRow.locator("td", { hasText: /^revoked$/ }).waitFor();
    if ((await page.locator('tr[data-token="e2e-viewer"] td', { hasText: /^revoked$/ }).count()) > 0) throw new Error("revoking one token revoked another");
    await page.getByRole("link", { name: "Audit" }).click();
    await page.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
    await page.locator("td code", { hasText: "create_api_token" }).first().waitFor();
    await page.screenshot({ path: join(out, "audit.png"), fullPage: true });

    step("a viewer sees no buttons it cannot use, and the server refuses it anyway");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").fill(viewerSecret);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((u) => !u.pathname.startsWith("/signin"));
    await page.goto(`${base}/components/${component}`);
    await page.getByText("can look but not change").waitFor();
    if ((await page.getByRole("button", { name: /^(Pause|Resume|Scale|Rollback)$/ }).count()) > 0) throw new Error("a viewer sees a button it cannot use");
    await page.screenshot({ path: join(out, "component-viewer.png"), fullPage: true });
    const refused = await fetch(`${base}/v9.component.v1.ComponentService/Pause`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${viewerSecret}` },
      body: JSON.stringify({ name: component }),
    });
    if (refused.status !== 403) throw new Error(`a viewer's Pause answered ${refused.status}, want 403`);
  }

  step("1,000 components: the list pages and stays live");
  const bulk = Array.from({ length: 1000 }, (_, i) => `bulk-${String(i).padStart(4, "0")}`);
  const tc = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 48 }, async () => {
      while (next < bulk.length) {
        const name = bulk[next++];
        // A write in doubt (leadership lost under load) is tried again; "already exists"
        // then means the first try was applied.
        for (let attempt = 0; ; attempt++) {
          try {
            await call("v9.component.v1.ComponentService", "Create", { name, runtime: "RUNTIME_WASM" });
            break;
          } catch (e) {
            if (/already_exists/.test(String(e))) break;
            if (attempt >= 10 || !/unavailable|503|504/.test(String(e))) throw e;
            await new Promise((r) => setTimeout(r, 300));
          }
        }
      }
    }),
  );
  console.log(`created ${bulk.length} components through the API in ${Date.now() - tc} ms`);
  // The bytes the list's Watch stream brings (CDP's per-chunk counts of its response body).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const watchIds = new Set();
  let watchBytes = 0;
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.request.url.includes("ComponentService/Watch")) watchIds.add(e.requestId);
  });
  cdp.on("Network.dataReceived", (e) => {
    if (watchIds.has(e.requestId)) watchBytes += e.dataLength;
  });
  await page.goto(`${base}/`);
  await page.locator('tr[data-component="bulk-0000"]').waitFor();
  await page.getByText(/Page 1 of \d+/).waitFor();
  const listMs = await page.evaluate(() => performance.now());
  const pageBytes = watchBytes;
  console.log(`measure components_1000_list_interactive_ms ${listMs.toFixed(0)} (the first 50-row page: ${pageBytes} bytes)`);
  const bulkSamples = [];
  const changeBytes = [];
  for (const [method, want] of [
    ["Pause", "paused"],
    ["Resume", "no deployment"],
    ["Pause", "paused"],
  ]) {
    const b0 = watchBytes;
    await call("v9.component.v1.ComponentService", method, { name: "bulk-0001" });
    const t1 = Date.now();
    await page.locator('tr[data-component="bulk-0001"] .badge', { hasText: want }).waitFor();
    bulkSamples.push(Date.now() - t1);
    changeBytes.push(watchBytes - b0);
  }
  console.log(`measure list_change_bytes_max ${Math.max(...changeBytes)} (per change: ${changeBytes.join(", ")} bytes of the Watch stream; the whole page was ${pageBytes})`);
  console.log(`measure components_1000_status_change_visible_ms_max ${Math.max(...bulkSamples)} (samples ${bulkSamples.join(", ")})`);
  await page.screenshot({ path: join(out, "components-1000.png"), fullPage: true });

  step("an unknown component says so");
  await page.goto(`${base}/components/no-such-component`);
  await page.locator("[role=alert] strong", { hasText: "Not found" }).waitFor();
  // The 404 of that read (and Chromium's console line about it) is expected here.
  for (let i = problems.length - 1; i >= 0; i--) if (/HTTP 404: .*ComponentService\/Get|status of 404/.test(problems[i])) problems.splice(i, 1);
  await page.screenshot({ path: join(out, "not-found.png"), fullPage: true });

  if (problems.length > 0) {
    failed = true;
    console.error(`problems seen in the browser:\n  ${problems.join("\n  ")}`);
  }
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack ?? e}`);
  try {
    const page = browser.pages()[0];
    await page?.screenshot({ path: join(out, "failure.png"), fullPage: true });
    console.error(`failure screenshot: ${join(out, "failure.png")}; problems so far:\n  ${problems.join("\n  ")}`);
  } catch {}
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
