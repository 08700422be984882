// The job list: a snapshot from GET /jobs, kept current by the status events of GET /events.

import { api, ApiError, openStream } from "./api.js";
import {
  describeRef, el, formatAge, formatDuration, isTerminal, jobDuration, jobPath, shortSha,
} from "./format.js";

const SHOWN = 100;
const KEPT = 1000;
const STATUSES = ["pending", "running", "success", "failed", "cancelled"];

export function showList(main, notice) {
  const query = new URLSearchParams(location.search);
  const filters = {
    repo: query.get("repo") || "",
    branch: query.get("branch") || "",
    status: query.get("status") || "",
  };
  const jobs = new Map(); // id -> job, what the list knows
  const fromEvents = new Set(); // jobs a status event told about: newer than any snapshot
  const pending = new Map(); // every pending job known (any filter): id -> created_at
  let olderPending = 0; // pending jobs older than every one known (past the snapshot's page)
  const rows = new Map(); // id -> {row, cells}

  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter jobs" },
    field("Repository", "repo", filters.repo, "owner/name"),
    field("Branch", "branch", filters.branch, "main"),
    el("label", {}, "Status",
      el("select", { name: "status" },
        el("option", { value: "" }, "any"),
        ...STATUSES.map((s) => el("option", { value: s, selected: s === filters.status }, s)))),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const key of ["repo", "branch", "status"]) {
      const value = String(data.get(key) || "").trim();
      filters[key] = value;
      if (value) next.set(key, value);
    }
    history.replaceState(null, "", next.size ? `/?${next}` : "/");
    render();
    loadSnapshot();
  });

  const connection = el("span", { class: "connection", role: "status", "data-state": "connecting" },
    "connecting");
  const summary = el("p", { class: "summary", "aria-live": "polite" });
  const body = el("tbody");
  const table = el("table", { class: "jobs", "data-testid": "jobs" },
    el("caption", { class: "visually-hidden" }, "Jobs, newest first"),
    el("thead", {}, el("tr", {},
      ...["Status", "Job", "Commit", "Pushed by", "Created", "Duration", "Queue"]
        .map((h) => el("th", { scope: "col" }, h)))),
    body);
  main.replaceChildren(
    el("div", { class: "title-row" }, el("h1", {}, "Jobs"), connection),
    form, summary, el("div", { class: "table-wrap" }, table));

  function matches(job) {
    return (!filters.repo || job.repo === filters.repo)
      && (!filters.branch || job.branch === filters.branch)
      && (!filters.status || job.status === filters.status);
  }

  function notePending(job) {
    if (job.status === "pending") pending.set(job.id, job.created_at);
    else if (pending.delete(job.id) === false && olderPending > 0 && job.status === "running"
             && !jobs.has(job.id)) olderPending -= 1; // an older one we never saw left the queue
  }

  function queuePosition(job) {
    if (job.status !== "pending") return "";
    let ahead = olderPending;
    for (const [id, created] of pending) {
      if (id !== job.id && (created < job.created_at || (created === job.created_at && id < job.id))) ahead += 1;
    }
    return `#${ahead + 1}`;
  }

  function makeRow(job) {
    const link = el("a", { href: jobPath(job.id) });
    const cells = {
      status: el("span", { class: "badge" }),
      link,
      ref: el("span", { class: "ref" }),
      sha: el("code", {}),
      message: el("span", { class: "message" }),
      who: el("span", {}),
      created: el("time", {}),
      duration: el("span", {}),
      queue: el("span", {}),
    };
    const row = el("tr", { "data-job": job.id },
      el("td", { "data-label": "Status" }, cells.status),
      el("td", { "data-label": "Job" }, link, el("br"), cells.ref),
      el("td", { "data-label": "Commit" }, cells.sha, " ", cells.message),
      el("td", { "data-label": "Pushed by" }, cells.who),
      el("td", { "data-label": "Created" }, cells.created),
      el("td", { "data-label": "Duration" }, cells.duration),
      el("td", { "data-label": "Queue" }, cells.queue));
    return { row, cells };
  }

  function fillRow({ row, cells }, job, now) {
    row.dataset.status = job.status;
    cells.status.textContent = job.status;
    cells.status.className = `badge ${job.status}`;
    cells.link.textContent = job.repo;
    cells.ref.textContent = describeRef(job);
    cells.sha.textContent = shortSha(job.commit);
    cells.message.textContent = job.message || "";
    const who = job.pusher || job.author || "";
    cells.who.textContent = job.author && job.author !== who ? `${who} (${job.author})` : who;
    cells.created.textContent = formatAge(job.created_at, now);
    cells.created.dateTime = job.created_at;
    cells.created.title = job.created_at;
    cells.duration.textContent = formatDuration(jobDuration(job, now));
    cells.queue.textContent = queuePosition(job);
  }

  function forgetOld() {
    // a tab left open for days: keep the newest jobs, and every pending one (queue positions)
    if (jobs.size <= KEPT) return;
    const old = [...jobs.values()].filter((job) => job.status !== "pending")
      .sort((a, b) => (a.created_at < b.created_at ? -1 : 1))
      .slice(0, jobs.size - KEPT);
    for (const job of old) {
      jobs.delete(job.id);
      fromEvents.delete(job.id);
    }
  }

  function render() {
    forgetOld();
    const now = Date.now();
    const shown = [...jobs.values()].filter(matches)
      .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0))
      .slice(0, SHOWN);
    const wanted = new Set(shown.map((job) => job.id));
    for (const [id, entry] of rows) {
      if (!wanted.has(id)) {
        entry.row.remove();
        rows.delete(id);
      }
    }
    shown.forEach((job, index) => {
      let entry = rows.get(job.id);
      if (!entry) {
        entry = makeRow(job);
        rows.set(job.id, entry);
      }
      fillRow(entry, job, now);
      if (body.children[index] !== entry.row) body.insertBefore(entry.row, body.children[index] || null);
    });
    summary.textContent = shown.length ? `${shown.length} jobs shown` : "No jobs match.";
  }

  async function loadSnapshot() {
    const params = new URLSearchParams({ limit: "50" });
    for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
    try {
      const [page, queued] = await Promise.all([
        api(`/jobs?${params}`),
        api("/jobs?status=pending&limit=200"),
      ]);
      for (const job of [...page.jobs, ...queued.jobs]) {
        if (!fromEvents.has(job.id)) {
          jobs.set(job.id, job);
          notePending(job);
        }
      }
      olderPending = Math.max(0, queued.total - queued.jobs.length);
      notice.hide();
      render();
    } catch (error) {
      notice.show(error instanceof ApiError && error.status === 401
        ? "Sign in with an API token to see the jobs."
        : `Could not load the jobs: ${error.message}`);
    }
  }

  let loaded = false;
  openStream({
    path: "/events",
    params: {},
    mint: () => api("/events/token", { method: "POST", body: {} }),
    onState(state) {
      connection.textContent = state;
      connection.dataset.state = state;
      // refused before it ever got going (no token where one is needed): say why
      if (state !== "connecting" && state !== "live" && !loaded) loadSnapshot();
    },
    onEvent(type, data) {
      if (type === "ready" && !loaded) {
        loaded = true;
        loadSnapshot();
      } else if (type === "gap") {
        loadSnapshot();
      } else if (type === "status") {
        const { job_id: _, ...job } = data;
        fromEvents.add(job.id);
        notePending(job);
        jobs.set(job.id, job);
        scheduleRender();
      }
    },
  });

  let frame = 0;
  function scheduleRender() {
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      render();
    });
  }
  // durations of running jobs and ages move on by themselves
  window.setInterval(() => {
    if ([...jobs.values()].some((job) => !isTerminal(job))) scheduleRender();
  }, 1000);
}

function field(label, name, value, placeholder) {
  return el("label", {}, label,
    el("input", { name, value, placeholder, autocomplete: "off", spellcheck: "false" }));
}
