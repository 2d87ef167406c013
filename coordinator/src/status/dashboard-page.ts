/**
 * The coordinator's dashboard: one self-contained HTML page at `/` (and `/index.html`),
 * with its CSS and script inline (dashboard-script.ts) and a small SVG icon at
 * `/favicon.svg`. Nothing is fetched from another origin: the Content-Security-Policy
 * allows the inline style and script by their sha256 hashes and connections only to the
 * page's own origin (the status event stream). The job id is written into the page when it
 * is served; a coordinator that still waits for SubmitJob serves a page that reloads itself.
 */
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { dashboardScript } from "./dashboard-script.js";

const style = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d8dde6; --panel: #ffffff; --bg: #f3f5f9;
  --blue: #1f5fbf; --green: #1b7f3b; --red: #b3261e; --amber: #8a5a00; --violet: #6b3fb5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; padding: 10px 20px; background: var(--panel); border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 18px; }
h2 { margin: 0 0 6px; font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 12px; padding: 12px 20px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.wide { grid-column: 1 / -1; }
.phase { display: inline-block; padding: 1px 10px; border-radius: 10px; font-weight: 600; color: #fff; background: var(--muted); }
.phase-pending { background: var(--amber); } .phase-running { background: var(--blue); } .phase-evaluating { background: var(--violet); }
.phase-succeeded { background: var(--green); } .phase-failed { background: var(--red); } .phase-paused { background: var(--amber); }
.connection { color: var(--muted); } .connection.lost { color: var(--red); }
#message { color: var(--muted); flex-basis: 100%; margin: 0; }
dl { display: grid; grid-template-columns: repeat(3, max-content minmax(0, 1fr)); gap: 2px 12px; margin: 0 0 6px; }
dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; white-space: nowrap; }
progress { width: calc(100% - 50px); height: 12px; vertical-align: middle; accent-color: var(--blue); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; color: var(--muted); padding-bottom: 4px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); }
tr.state-lost td { color: var(--red); } tr.state-stopped td, tr.state-standby td { color: var(--muted); }
svg { width: 100%; height: auto; display: block; }
.plot { fill: #fafbfd; stroke: var(--line); } .grid { stroke: var(--line); }
.axis { font-size: 11px; fill: var(--muted); } .axis.loss { fill: var(--blue); } .axis.accuracy { fill: var(--green); }
.loss-line { fill: none; stroke: var(--blue); stroke-width: 2; stroke-linejoin: round; }
.accuracy-point { fill: var(--green); stroke: #fff; stroke-width: 1.5; }
.legend { margin: 4px 0 0; color: var(--muted); } .legend .loss { color: var(--blue); } .legend .accuracy { color: var(--green); }
ol { list-style: none; margin: 0; padding: 0; max-height: 300px; overflow: auto; }
li { padding: 2px 0; border-bottom: 1px solid var(--line); } time { color: var(--muted); font-variant-numeric: tabular-nums; }
`;

const body = `
<header>
  <h1>trainfleet <span data-testid="job-id"></span></h1>
  <p><span class="phase" data-testid="phase">Connecting</span> <span data-testid="reason"></span></p>
  <p class="connection" data-testid="connection" role="status">connecting…</p>
  <p id="message" data-testid="message"></p>
</header>
<main>
  <section aria-labelledby="progress-title">
    <h2 id="progress-title">Progress</h2>
    <dl>
      <dt>Epoch</dt><dd data-testid="epoch">–</dd>
      <dt>Step</dt><dd data-testid="step">–</dd>
      <dt>Samples/s</dt><dd data-testid="samples-per-second">–</dd>
      <dt>ETA</dt><dd data-testid="eta">–</dd>
      <dt>Loss</dt><dd data-testid="loss">–</dd>
      <dt>Test accuracy</dt><dd data-testid="accuracy">–</dd>
      <dt>Generation</dt><dd data-testid="generation">–</dd>
      <dt>Checkpoint</dt><dd data-testid="checkpoint">–</dd>
    </dl>
    <progress data-testid="progress" aria-label="steps done" max="1" value="0"></progress> <span data-testid="progress-text">–</span>
    <svg data-testid="loss-chart" viewBox="0 0 640 200" role="img" aria-label="Training loss by step"></svg>
    <p class="legend"><span class="loss">━ training loss</span> (left axis) · <span class="accuracy">● test accuracy</span> (right axis)</p>
  </section>
  <section aria-labelledby="events-title">
    <h2 id="events-title">Last events</h2>
    <ol data-testid="events" aria-live="polite"></ol>
  </section>
  <section class="wide">
    <table data-testid="workers">
      <caption>Workers: <span data-testid="worker-count">0</span> (<span data-testid="worker-live">0</span> live)</caption>
      <thead><tr><th scope="col">Worker</th><th scope="col">Rank</th><th scope="col">Host</th><th scope="col">State</th><th scope="col">Heartbeat</th><th scope="col">Step time</th><th scope="col">Backend</th></tr></thead>
      <tbody data-testid="worker-rows"></tbody>
    </table>
  </section>
  <section class="wide">
    <table data-testid="shards">
      <caption>Parameter-server shards</caption>
      <thead><tr><th scope="col">Shard</th><th scope="col">Member</th><th scope="col">State</th><th scope="col">Heartbeat</th><th scope="col">Bytes in</th><th scope="col">Bytes out</th><th scope="col">Aggregation</th><th scope="col">Version</th></tr></thead>
      <tbody data-testid="shard-rows"></tbody>
    </table>
  </section>
</main>
<noscript>The dashboard needs JavaScript; the same status is at /v1/jobs/{id} as JSON.</noscript>
`;

const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f5fbf"/><polyline points="2,4 6,9 9,8 14,13" fill="none" stroke="#fff" stroke-width="2"/></svg>\n`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/** The page's Content-Security-Policy: its own inline style and script, connections to its own origin, nothing else. */
export const dashboardContentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${sha256(dashboardScript)}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page for `jobId`; for none ("", the coordinator waits for SubmitJob) it reloads every 5 s. */
export function dashboardHtml(jobId: string): string {
  const id = escapeHtml(jobId);
  const refresh = jobId === "" ? `\n<meta http-equiv="refresh" content="5">` : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">${refresh}
<title>trainfleet${jobId === "" ? "" : `: ${id}`}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>${style}</style>
</head>
<body data-job-id="${id}">${body.replace('<span data-testid="job-id"></span>', `<span data-testid="job-id">${id}</span>`)}<script>${dashboardScript}</script>
</body>
</html>
`;
}

/** The dashboard's paths: `/`, `/index.html` and `/favicon.svg`. */
export function isDashboardPath(path: string): boolean {
  return path === "/" || path === "/index.html" || path === "/favicon.svg";
}

/** Answers a GET of one of the dashboard's paths. */
export function sendDashboard(response: ServerResponse, path: string, jobId: string): void {
  const [contentType, text] = path === "/favicon.svg" ? ["image/svg+xml", favicon] : ["text/html; charset=utf-8", dashboardHtml(jobId)];
  response.writeHead(200, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    "content-security-policy": dashboardContentSecurityPolicy,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  response.end(text);
}
