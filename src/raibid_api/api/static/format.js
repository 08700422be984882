// Small helpers shared by the views: building DOM nodes from text only, and formatting times.

/**
 * An element with attributes and children. Children are nodes or strings; a string always becomes
 * a text node, never markup, so untrusted text (log lines, commit messages) stays text.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export const TERMINAL = new Set(["success", "failed", "cancelled"]);

export function isTerminal(job) {
  return TERMINAL.has(job.status);
}

/** "1h 02m", "3m 07s", "12s" */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

/** The job's duration: final once it ended, growing while it runs. */
export function jobDuration(job, now = Date.now()) {
  if (job.duration !== null && job.duration !== undefined) return job.duration;
  if (job.status === "running" && job.started_at) return (now - Date.parse(job.started_at)) / 1000;
  return null;
}

/** "5s ago", "3m ago", "2h ago", "4d ago" */
export function formatAge(iso, now = Date.now()) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** What a job builds: "main", "tag v1.2", "PR #7 (feature)" */
export function describeRef(job) {
  if (job.pull_request) return `PR #${job.pull_request}${job.branch ? ` (${job.branch})` : ""}`;
  if (job.tag) return `tag ${job.tag}`;
  return job.branch || job.ref || "";
}

export function shortSha(commit) {
  return commit ? commit.slice(0, 8) : "";
}

/** The page of a job, relative to wherever the dashboard is served from. */
export function jobPath(id) {
  return `/ui/jobs/${encodeURIComponent(id)}`;
}
