/**
 * The dashboard's browser script, as plain JavaScript text that dashboard-page.ts inlines
 * (its CSP allows it by hash). No framework and no build step: it follows the job's status
 * event stream and redraws the page from each JobStatus (proto JSON). The "last events"
 * list is derived by comparing each status with the one before it.
 *
 * The stream needs the job's read token, which EventSource cannot send, so it is read with
 * fetch and a stream reader (and a small server-sent-events parser) with `Authorization:
 * Bearer`; a dropped connection is opened again with Last-Event-ID, as EventSource would.
 * The token comes in the URL's fragment (`/#token=...`, which the browser never sends to
 * the server, so it is in no request line and no log); the script keeps it in
 * sessionStorage (this tab only, and it survives the reloads of a page that waits for a
 * job) and takes it out of the address bar. Without a token, or with a refused one, the
 * page says how to open it with one.
 */
export const dashboardScript = `"use strict";
(() => {
  const jobId = document.body.dataset.jobId || "";
  const $ = (id) => document.querySelector('[data-testid="' + id + '"]');
  const svgNs = "http://www.w3.org/2000/svg";
  const maxEvents = 30;
  let previous;
  let latest;

  const enumName = (value, prefix) => {
    const text = String(value || "").replace(prefix, "").toLowerCase();
    return text.charAt(0).toUpperCase() + text.slice(1);
  };
  const phaseOf = (s) => enumName(s.phase, "JOB_PHASE_");
  const stateOf = (m) => enumName(m.state, "WORKER_STATE_");
  const finished = (s) => s.phase === "JOB_PHASE_SUCCEEDED" || s.phase === "JOB_PHASE_FAILED";
  const setText = (id, text) => { const el = $(id); if (el.textContent !== text) el.textContent = text; };
  const bytes = (n) => {
    let value = Number(n || 0);
    for (const unit of ["B", "KiB", "MiB", "GiB"]) {
      if (value < 1024 || unit === "GiB") return (unit === "B" ? value.toFixed(0) : value.toFixed(1)) + " " + unit;
      value /= 1024;
    }
  };
  const duration = (seconds) => {
    if (seconds === undefined || seconds === null) return "–";
    const s = Math.max(0, Math.round(seconds));
    return s >= 3600 ? Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m" : s >= 60 ? Math.floor(s / 60) + "m " + (s % 60) + "s" : s + "s";
  };
  const age = (unixMs) => { const ms = Number(unixMs || 0); return ms === 0 ? "–" : duration((Date.now() - ms) / 1000) + " ago"; };
  const clock = (date) => date.toTimeString().slice(0, 8);

  function row(cells, className) {
    const tr = document.createElement("tr");
    if (className) tr.className = className;
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.append(td);
    }
    return tr;
  }

  function renderWorkers(s) {
    const body = $("worker-rows");
    const workers = [...s.workers].sort((a, b) => a.rank - b.rank || a.workerId.localeCompare(b.workerId));
    body.replaceChildren(...workers.map((w) => {
      // A worker that reported why it gave up (ReportFailure): the reason by its state, the message on hover.
      const failed = w.lastErrorReason ? " (" + w.lastErrorReason + ")" : "";
      const tr = row([w.workerId, String(w.rank), w.host, stateOf(w) + failed, age(w.lastHeartbeatUnixMs), w.stepTimeMs > 0 ? w.stepTimeMs.toFixed(1) + " ms" : "–", w.backend || "–"], "state-" + stateOf(w).toLowerCase());
      tr.dataset.workerId = w.workerId;
      if (w.lastErrorMessage) tr.title = w.lastErrorMessage;
      return tr;
    }));
    setText("worker-count", String(workers.length));
    setText("worker-live", String(workers.filter((w) => w.state !== "WORKER_STATE_LOST" && w.state !== "WORKER_STATE_STOPPED").length));
  }

  function renderShards(s) {
    $("shard-rows").replaceChildren(...s.parameterServers.map((p) => {
      const stats = p.stats || {};
      return row([String(p.index), p.memberId, stateOf(p), age(p.lastHeartbeatUnixMs), bytes(stats.bytesIn), bytes(stats.bytesOut), (Number(stats.aggregationMs || 0) / 1000).toFixed(2) + " s", String(stats.version || 0)], "state-" + stateOf(p).toLowerCase());
    }));
  }

  function svg(name, attributes, text) {
    const el = document.createElementNS(svgNs, name);
    for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // The loss (left axis, 0 to the highest loss) and the test accuracy (right axis, 0 to 1) by step.
  function renderChart(s) {
    const chart = $("loss-chart");
    const [width, height, left, right, top, bottom] = [640, 200, 48, 44, 10, 26];
    const loss = s.lossHistory || [];
    const accuracy = s.accuracyHistory || [];
    const lastStep = Math.max(1, s.totalSteps || 0, s.step || 0, ...loss.map((p) => p.step));
    const maxLoss = Math.max(1e-9, ...loss.map((p) => p.value)) * 1.05;
    const x = (step) => left + (step / lastStep) * (width - left - right);
    const yLoss = (value) => top + (1 - value / maxLoss) * (height - top - bottom);
    const yAccuracy = (value) => top + (1 - value) * (height - top - bottom);
    const parts = [svg("rect", { class: "plot", x: left, y: top, width: width - left - right, height: height - top - bottom })];
    for (const fraction of [0, 0.5, 1]) {
      const y = top + (1 - fraction) * (height - top - bottom);
      parts.push(svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
      parts.push(svg("text", { class: "axis loss", x: left - 6, y: y + 4, "text-anchor": "end" }, (maxLoss * fraction).toFixed(2)));
      parts.push(svg("text", { class: "axis accuracy", x: width - right + 6, y: y + 4 }, (fraction * 100).toFixed(0) + "%"));
    }
    parts.push(svg("text", { class: "axis", x: left, y: height - 8 }, "step 0"));
    parts.push(svg("text", { class: "axis", x: width - right, y: height - 8, "text-anchor": "end" }, "step " + lastStep));
    parts.push(svg("polyline", { class: "loss-line", "data-testid": "loss-line", points: loss.map((p) => x(p.step).toFixed(1) + "," + yLoss(p.value).toFixed(1)).join(" ") }));
    for (const p of accuracy) {
      const dot = svg("circle", { class: "accuracy-point", "data-testid": "accuracy-point", cx: x(p.step), cy: yAccuracy(p.value), r: 5 });
      dot.append(svg("title", {}, "test accuracy " + (p.value * 100).toFixed(1) + "% at step " + p.step));
      parts.push(dot);
    }
    chart.replaceChildren(...parts);
    chart.dataset.points = String(loss.length);
    chart.dataset.accuracyPoints = String(accuracy.length);
    const lastLoss = loss.at(-1);
    chart.setAttribute("aria-label", "Training loss by step: " + loss.length + " points" + (lastLoss ? ", latest " + lastLoss.value.toFixed(4) + " at step " + lastLoss.step : "") + (accuracy.length ? "; test accuracy " + (accuracy.at(-1).value * 100).toFixed(1) + "%" : ""));
  }

  // What changed between two statuses, as lines for the "last events" list.
  function changes(before, after) {
    const lines = [];
    if (!before) lines.push("watching job " + after.jobId + ": " + phaseOf(after) + " (" + after.reason + ")");
    else if (before.phase !== after.phase || before.reason !== after.reason) lines.push("phase " + phaseOf(after) + " (" + after.reason + ")" + (after.message ? ": " + after.message : ""));
    if (before && before.generation !== after.generation) lines.push("generation " + after.generation);
    const members = (s) => new Map([...s.workers.map((w) => [w.workerId, w]), ...s.parameterServers.map((p) => [p.memberId, p])]);
    const was = before ? members(before) : new Map();
    for (const [id, member] of members(after)) {
      const old = was.get(id);
      if (!old) lines.push(id + " joined" + (member.host ? " from " + member.host : ""));
      else if (old.state !== member.state && (member.state === "WORKER_STATE_LOST" || member.state === "WORKER_STATE_STOPPED" || member.state === "WORKER_STATE_STANDBY")) lines.push(id + " " + stateOf(member).toLowerCase() + (member.lastErrorReason ? ": " + member.lastErrorReason : ""));
    }
    for (const id of was.keys()) if (!members(after).has(id)) lines.push(id + " left");
    if (after.lastCheckpointVersion !== undefined && (before ? before.lastCheckpointVersion : undefined) !== after.lastCheckpointVersion) lines.push("checkpoint at step " + after.lastCheckpointVersion);
    if ((after.accuracyHistory || []).length > (before ? (before.accuracyHistory || []).length : 0)) lines.push("test accuracy " + (after.accuracyHistory.at(-1).value * 100).toFixed(2) + "%");
    return lines;
  }

  function addEvents(lines) {
    const list = $("events");
    const time = clock(new Date());
    for (const line of lines) {
      const item = document.createElement("li");
      const stamp = document.createElement("time");
      stamp.textContent = time;
      item.append(stamp, " " + line);
      list.prepend(item);
    }
    while (list.children.length > maxEvents) list.lastElementChild.remove();
  }

  function render(s) {
    document.title = "trainfleet: " + s.jobId + " " + phaseOf(s);
    const phase = $("phase");
    setText("phase", phaseOf(s));
    phase.className = "phase phase-" + phaseOf(s).toLowerCase();
    setText("reason", s.reason);
    setText("message", s.message);
    setText("generation", String(s.generation));
    setText("epoch", s.epochs ? Math.min(s.epoch + 1, s.epochs) + " / " + s.epochs : "–");
    setText("step", s.step + " / " + s.totalSteps);
    const progress = $("progress");
    progress.max = Math.max(1, s.totalSteps);
    progress.value = s.step;
    setText("progress-text", s.totalSteps ? ((100 * s.step) / s.totalSteps).toFixed(0) + "%" : "–");
    setText("loss", s.step > 0 ? s.loss.toFixed(4) : "–");
    setText("samples-per-second", s.samplesPerSecond > 0 ? s.samplesPerSecond.toFixed(0) : "–");
    setText("eta", s.etaSeconds === undefined ? "–" : duration(s.etaSeconds));
    setText("accuracy", s.testAccuracy === undefined ? "–" : (s.testAccuracy * 100).toFixed(2) + "%");
    setText("checkpoint", s.lastCheckpointVersion === undefined ? "none yet" : "step " + s.lastCheckpointVersion + ", " + age(s.lastCheckpointUnixMs));
    renderWorkers(s);
    renderShards(s);
    renderChart(s);
  }

  function connection(text, className) {
    const el = $("connection");
    setText("connection", text);
    el.className = "connection " + className;
  }

  // The token: from the fragment once (then out of the address bar and the history), from this tab's storage after.
  const tokenKey = "trainfleet-token";
  const fragment = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (fragment) {
    sessionStorage.setItem(tokenKey, decodeURIComponent(fragment[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem(tokenKey) || "";

  function needsToken(given) {
    if (given) sessionStorage.removeItem(tokenKey);
    setText("phase", "Needs a token");
    $("phase").className = "phase phase-failed";
    connection(given ? "the token was refused" : "needs a token", "lost");
    setText("message", (given ? "This coordinator refused the token this page was given. " : "This coordinator needs the job's read token to show its status. ") +
      "Open the page as " + location.origin + "/#token=TOKEN with the job's read token: trainfleet run prints that link, and a job folder keeps the token in tokens/read.");
  }

  if (jobId === "") {
    connection("no job yet: this coordinator waits for JobService.SubmitJob (the page reloads by itself)", "waiting");
    return;
  }
  const watchUrl = "/v1/jobs/" + encodeURIComponent(jobId) + "/watch";
  let lastEventId;
  let ended = false;
  let retryMs = 1000;

  function onStatus(data) {
    const status = JSON.parse(data);
    addEvents(changes(previous, status));
    previous = status;
    latest = status;
    render(status);
    if (finished(status)) {
      ended = true;
      connection("the job has ended", "ended");
    }
  }

  function reconnect(afterMs) {
    connection("reconnecting…", "lost");
    setTimeout(follow, afterMs);
    retryMs = Math.min(retryMs * 2, 8000);
  }

  // One connection to the event stream, read to its end; lines end in LF (this server's), events at a blank line.
  async function follow() {
    const headers = { accept: "text/event-stream" };
    if (token) headers.authorization = "Bearer " + token;
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
    let response;
    try {
      response = await fetch(watchUrl, { headers, cache: "no-store" });
    } catch {
      return reconnect(retryMs);
    }
    if (response.status === 401 || response.status === 403) return needsToken(token !== "");
    if (response.status === 503) return reconnect(1000 * Number(response.headers.get("retry-after") || 5));
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      connection("disconnected (reload to retry)", "lost");
      setText("message", body.message || "HTTP " + response.status);
      return;
    }
    connection("live", "live");
    retryMs = 1000;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let type = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffer.indexOf("\\n")) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line === "") {
            if (data.length > 0 && (type || "message") === "status") onStatus(data.join("\\n"));
            data = [];
            type = "";
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") data.push(text);
          else if (field === "event") type = text;
          else if (field === "id") lastEventId = text;
        }
        if (ended) return reader.cancel();
      }
    } catch {
      // the connection dropped: opened again below
    }
    if (!ended) reconnect(retryMs);
  }
  follow();
  // Heartbeat and checkpoint ages grow between events.
  setInterval(() => { if (latest) { renderWorkers(latest); renderShards(latest); } }, 1000);
})();
`;
