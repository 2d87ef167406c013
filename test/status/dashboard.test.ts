/**
 * The coordinator's dashboard page (`/`) in Debian's headless Chromium, driven by
 * playwright-core, against a live local fleet of real processes (a coordinator with a read
 * token, a shard and two workers started one by one): opened with the token in its URL's
 * fragment (`/#token=...`, as `trainfleet run` prints it), the page shows the worker count
 * go from 0 to 1 to 2, the loss chart gain points while the job trains, and the job end as
 * Succeeded, with no console error and no request to any other origin; it saves the
 * screenshot the README shows. Without a token, or with a wrong one, it says it needs one. Every
 * wait is on a real signal: a log line, or the page's DOM (playwright's waiting), never a
 * sleep. A missing Chromium fails the test naming scripts/install-chromium.sh.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "@trainfleet/testing/fixtures/headless-chromium";
import type { FleetProcess } from "@trainfleet/testing/fleet/fleet-process";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A test run leaves the tree alone: the README's copy is refreshed only when asked for.
const screenshot =
  process.env["TRAINFLEET_UPDATE_SCREENSHOT"] === "1"
    ? fileURLToPath(new URL("../../docs/dashboard.png", import.meta.url))
    : join(tmpdir(), `trainfleet-dashboard-${process.pid}.png`);
const jobId = "fashion-mnist";
// At most 200 steps: the loss history holds one point per step, so the chart only gains points.
const maxSteps = 200;

const token = "dashboard-read-token-0123456789abcdefghijklmnop";
const tokenFile = join(mkdtempSync(join(tmpdir(), "trainfleet-dashboard-")), "read");
writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });

const { start, stop: stopProcesses } = processGroup();
let browser: Browser | undefined;
let coordinator: FleetProcess;
let address: string;
let origin: string;

/**
 * Waits until the loss chart holds at least `count` points. A function predicate, which
 * playwright calls through the DevTools protocol: the page's CSP (rightly) forbids the
 * eval a string predicate needs. The page's DOM types are not in this project's lib.
 */
function chartPoints(page: Page, count: number): Promise<unknown> {
  const predicate = (least: number) =>
    Number(
      (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document
        .querySelector('[data-testid="loss-chart"]')
        ?.getAttribute("data-points"),
    ) >= least;
  return page.waitForFunction(predicate, count, { timeout: 30_000 });
}

beforeAll(async () => {
  coordinator = start("coordinator", [
    "coordinator",
    "--insecure",
    ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--linger-ms", "60000", "--lease-ms", "4500"],
    ...["--read-token-file", tokenFile],
    ...[
      "--job-id",
      jobId,
      "--workers",
      "2",
      "--shards",
      "1",
      "--hidden",
      "16",
      "--batch-size",
      "16",
      "--max-steps",
      String(maxSteps),
      "--eval-samples",
      "200",
    ],
  ]);
  address = (await coordinator.log("coordinator listening")).address as string;
  origin = new URL((await coordinator.log("status API listening")).url as string).origin;
});

afterAll(async () => {
  await browser?.close();
  await stopProcesses();
});

describe("the dashboard page", () => {
  it("is one HTML document at / and /index.html with a CSP that allows only its own inline code and origin", async () => {
    for (const path of ["/", "/index.html"]) {
      const response = await fetch(`${origin}${path}`);
      expect([path, response.status, response.headers.get("content-type")]).toEqual([path, 200, "text/html; charset=utf-8"]);
      const csp = response.headers.get("content-security-policy") ?? "";
      expect(csp).toMatch(
        /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+=*'; style-src 'sha256-[A-Za-z0-9+/]+=*'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
      );
      const html = await response.text();
      expect(html).toContain(`<body data-job-id="${jobId}">`);
      // Nothing that names another origin: no CDN, no font, no script src.
      expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    }
    expect((await fetch(`${origin}/favicon.svg`)).headers.get("content-type")).toBe("image/svg+xml");
    expect((await fetch(`${origin}/`, { method: "POST" })).status).toBe(405);
  });

  it("of a coordinator that waits for SubmitJob names no job and reloads itself", async () => {
    const waiting = start("coordinator --no-job", [
      "coordinator",
      "--insecure",
      "--no-job",
      "--listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
    ]);
    const url = new URL((await waiting.log("status API listening")).url as string);
    const html = await (await fetch(`${url.origin}/`)).text();
    expect(html).toContain(`<body data-job-id="">`);
    expect(html).toContain(`<meta http-equiv="refresh" content="5">`);
    waiting.kill("SIGTERM");
    await waiting.exited;
  });

  it("in headless Chromium without a token, or with a wrong one, says it needs the job's read token and how to give it", async () => {
    browser ??= await launchChromium();
    const howTo = `Open the page as ${origin}/#token=TOKEN with the job's read token: trainfleet run prints that link, and a job folder keeps the token in tokens/read.`;
    for (const [url, connection, why] of [
      [`${origin}/`, "needs a token", "This coordinator needs the job's read token to show its status. "],
      [
        `${origin}/#token=not-this-coordinators-token-0123456789`,
        "the token was refused",
        "This coordinator refused the token this page was given. ",
      ],
    ] as const) {
      const page: Page = await browser.newPage();
      await page.goto(url);
      await page.getByTestId("connection").filter({ hasText: connection }).waitFor({ timeout: 15_000 });
      expect([url, await page.getByTestId("phase").textContent()]).toEqual([url, "Needs a token"]);
      expect(await page.getByTestId("message").textContent()).toBe(`${why}${howTo}`);
      // Nothing of the job is shown.
      expect(await page.getByTestId("worker-rows").locator("tr").count()).toBe(0);
      await page.close();
    }
  });

  it("in headless Chromium follows a running job: workers joining, the loss chart growing, Succeeded", async () => {
    browser ??= await launchChromium();
    const page: Page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const consoleErrors: string[] = [];
    const foreignRequests: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") consoleErrors.push(`${message.type()}: ${message.text()}`);
    });
    page.on("pageerror", (error) => consoleErrors.push(`pageerror: ${error.message}`));
    page.on("request", (request) => {
      if (new URL(request.url()).origin !== origin) foreignRequests.push(request.url());
    });
    const text = (testId: string) => page.getByTestId(testId).textContent();
    const showing = (testId: string, value: string | RegExp) =>
      page.getByTestId(testId).filter({ hasText: value }).waitFor({ timeout: 45_000 });

    await page.goto(`${origin}/#token=${token}`);
    await showing("connection", /^live$/);
    // The token left the address bar (and the history) once the page had it.
    expect(page.url()).toBe(`${origin}/`);
    await showing("phase", /^Pending$/);
    expect([await text("job-id"), await text("worker-count"), await text("reason")]).toEqual([jobId, "0", "WaitingForMembers"]);

    start("ps-0", ["ps", "--insecure", "--coordinator", address, "--shard-index", "0"]);
    start("worker-0", ["worker", "--insecure", "--coordinator", address, "--backend", "cpu"]);
    await showing("worker-count", /^1$/);
    expect(await page.getByTestId("worker-rows").locator("tr").first().locator("td").first().textContent()).toBe("worker-0");
    start("worker-1", ["worker", "--insecure", "--coordinator", address, "--backend", "cpu"]);
    await showing("worker-count", /^2$/);
    expect(await page.getByTestId("worker-rows").locator("tr").count()).toBe(2);

    await showing("phase", /^Running$/);
    const pointsBefore = Number(await page.getByTestId("loss-chart").getAttribute("data-points"));
    await chartPoints(page, Math.max(2, pointsBefore + 1));
    const drawn = (await page.getByTestId("loss-line").getAttribute("points"))?.split(" ") ?? [];
    expect(drawn.length).toBeGreaterThan(pointsBefore);
    expect(await text("samples-per-second")).toMatch(/^\d+$/);
    expect(await page.getByTestId("shard-rows").locator("tr").count()).toBe(1);

    await showing("phase", /^Succeeded$/);
    await showing("connection", /^the job has ended$/);
    expect([await text("step"), await text("reason"), await text("progress-text")]).toEqual([
      `${maxSteps} / ${maxSteps}`,
      "Completed",
      "100%",
    ]);
    expect(await page.getByTestId("accuracy-point").count()).toBe(1);
    expect(await text("accuracy")).toMatch(/^\d+\.\d\d%$/);
    const events = await page.getByTestId("events").locator("li").allTextContents();
    for (const line of [
      `watching job ${jobId}: Pending (WaitingForMembers)`,
      "worker-0 joined",
      "worker-1 joined",
      "ps-0 joined",
      "phase Running (Training)",
      "phase Succeeded (Completed)",
    ]) {
      expect({ line, shown: events.some((event) => event.includes(line)) }).toEqual({ line, shown: true });
    }

    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  }, 60_000);
});
