// A job's page: what it builds, its status as it changes, its live log, cancel and retry.

import { api, ApiError, openStream, session } from "./api.js";
import {
  describeRef, el, formatAge, formatDuration, isTerminal, jobDuration, jobPath, shortSha,
} from "./format.js";
import { LogView } from "./logview.js";

export function showJob(main, notice, id) {
  let job = null;
  let finished = false;
  let wantedLine = lineFromHash();

  const title = el("h1", {}, "Job");
  const status = el("span", { class: "badge", "data-testid": "status" });
  const connection = el("span", { class: "connection", role: "status", "data-state": "connecting" },
    "connecting");
  const facts = el("dl", { class: "facts" });
  const message = el("p", { class: "commit-message", "data-testid": "message" });
  const feedback = el("p", { class: "feedback", role: "status" });
  const cancel = el("button", { type: "button", class: "danger", hidden: true }, "Cancel");
  const retry = el("button", { type: "button", hidden: true }, "Retry");
  const follow = el("input", { type: "checkbox", id: "follow", checked: true });
  const count = el("span", { class: "count", "data-testid": "line-count" }, "0 lines");
  const view = new LogView((n) => history.replaceState(null, "", `#L${n}`));

  view.onRender = () => {
    count.textContent = `${view.count} lines`;
  };
  follow.addEventListener("change", () => view.setFollow(follow.checked));
  view.element.addEventListener("follow", () => { follow.checked = view.follow; });
  cancel.addEventListener("click", () => act("cancel"));
  retry.addEventListener("click", () => act("retry"));
  window.addEventListener("hashchange", () => {
    wantedLine = lineFromHash();
    if (wantedLine && view.reveal(wantedLine)) wantedLine = null;
  });
  window.addEventListener("raibid:session", showButtons);

  main.replaceChildren(
    el("nav", { "aria-label": "Breadcrumb" }, el("a", { href: "/" }, "← All jobs")),
    el("div", { class: "title-row" }, title, status, connection),
    message, facts,
    el("div", { class: "actions" }, cancel, retry, feedback),
    el("div", { class: "log-bar" },
      el("h2", {}, "Log"), count,
      el("label", { class: "follow" }, follow, " Follow the end")),
    view.element);

  function showJobFacts() {
    title.textContent = `${job.repo} · ${describeRef(job)}`;
    document.title = `${job.status} · ${job.repo} · raibid-ci`;
    status.textContent = job.status;
    status.className = `badge ${job.status}`;
    main.dataset.status = job.status;
    message.textContent = job.message || "";
    const now = Date.now();
    const rows = [
      ["Commit", shortSha(job.commit) || "(not known yet)"],
      ["Event", job.event],
      ["Pushed by", job.pusher || job.author || ""],
      ["Author", job.author || ""],
      ["Created", `${formatAge(job.created_at, now)} (${job.created_at})`],
      ["Duration", formatDuration(jobDuration(job, now))],
      ["Attempt", String(job.attempt)],
      ["Agent", job.agent_id || ""],
      ["Exit code", job.exit_code === null || job.exit_code === undefined ? "" : String(job.exit_code)],
      ["Reason", job.reason || ""],
    ].filter(([, value]) => value);
    facts.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    if (job.retry_of) {
      facts.append(el("dt", {}, "Retry of"),
        el("dd", {}, el("a", { href: jobPath(job.retry_of) }, shortSha(job.retry_of))));
    }
    showButtons();
  }

  function showButtons() {
    const signedIn = Boolean(session.token);
    cancel.hidden = !signedIn || !job || isTerminal(job);
    retry.hidden = !signedIn || !job || !isTerminal(job);
  }

  async function act(what) {
    const button = what === "cancel" ? cancel : retry;
    button.disabled = true;
    feedback.textContent = what === "cancel" ? "Cancelling…" : "Retrying…";
    try {
      const answer = await api(`/jobs/${encodeURIComponent(id)}/${what}`, { method: "POST", body: {} });
      if (what === "retry") {
        location.assign(jobPath(answer.id));
        return;
      }
      job = answer;
      feedback.textContent = "Cancelled.";
      showJobFacts();
    } catch (error) {
      feedback.textContent = error instanceof ApiError && error.status === 403
        ? "Your token may not do this (it needs the write scope)."
        : `Could not ${what}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  function onEvent(type, data) {
    if (type === "log") {
      const n = data.n ?? view.count + 1;
      view.append(n, data.line ?? "", data.stream);
      if (wantedLine === n && view.reveal(n)) wantedLine = null;
    } else if (type === "status") {
      const { job_id: _, ...next } = data;
      if (!finished) {
        job = next;
        showJobFacts();
      }
    } else if (type === "gap") {
      view.appendGap(data.dropped ?? null);
    } else if (type === "ready") {
      historyDone();
    } else if (type === "end") {
      historyDone();
      finished = true;
      const final = (data.jobs || []).find((j) => j.id === id);
      if (final) {
        job = final;
        showJobFacts();
      }
      performance.mark("raibid:end");
    }
  }

  let historyMarked = false;
  function historyDone() {
    // the history has arrived (the stream's `ready`, or `end` for a job that is over)
    if (historyMarked) return;
    historyMarked = true;
    performance.mark("raibid:history");
  }

  window.setInterval(() => {
    if (job && job.status === "running") showJobFacts();
  }, 1000);

  api(`/jobs/${encodeURIComponent(id)}`).then((found) => {
    if (!job) {
      job = found;
      showJobFacts();
    }
    notice.hide();
  }, (error) => {
    notice.show(error instanceof ApiError && error.status === 401
      ? "Sign in with an API token to see this job."
      : error instanceof ApiError && error.status === 404
        ? "This job does not exist (or it expired)."
        : `Could not load the job: ${error.message}`);
  });

  openStream({
    path: "/events",
    params: { jobs: id },
    mint: () => api(`/jobs/${encodeURIComponent(id)}/logs/token`, { method: "POST" }),
    onEvent,
    onState(state) {
      connection.textContent = state;
      connection.dataset.state = state;
    },
  });
}

function lineFromHash() {
  const found = /^#L(\d+)$/.exec(location.hash);
  return found ? Number(found[1]) : null;
}
