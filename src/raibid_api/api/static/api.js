// Talking to the API: the visitor's token (kept in sessionStorage), JSON calls with it in the
// Authorization header, and resumable Server-Sent Event streams opened with short-lived stream
// tokens (an EventSource cannot send a header, and the API token never goes into a URL).

const TOKEN_KEY = "raibid.token";
const RECONNECT_MS = [1000, 2000, 5000, 10000];

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    window.dispatchEvent(new Event("raibid:session"));
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    window.dispatchEvent(new Event("raibid:session"));
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

/** A JSON call with the visitor's token; throws ApiError with the API's error body. */
export async function api(path, { method = "GET", body, token = session.token } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Compare two stream entry ids `<ms>-<seq>` (64-bit parts: compared as digit strings). */
function compareEntry(a, b) {
  const [am, as] = a.split("-");
  const [bm, bs] = b.split("-");
  return compareDigits(am, bm) || compareDigits(as || "0", bs || "0");
}

function compareDigits(a, b) {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether event id ``id`` is past ``last``: for a vector id (one entry id per job, comma-joined)
 * whether any component moved on. An event not past the last one seen is a repeat.
 */
export function isNewer(id, last) {
  if (!last) return true;
  const ids = id.split(",");
  const lasts = last.split(",");
  if (ids.length !== lasts.length) return true;
  return ids.some((part, i) => compareEntry(part, lasts[i]) > 0);
}

const EVENTS = ["status", "log", "gap", "ready", "end"];

/**
 * An SSE stream that survives dropped connections: the browser reconnects by itself with
 * Last-Event-ID; when the server refuses a reconnection (an expired stream token) a new token is
 * minted and the stream reopened with `last_event_id`. Events not past the last id seen are
 * dropped, so a line is never shown twice.
 *
 * @param {string} path the stream's path
 * @param {Record<string,string>} params its query
 * @param {() => Promise<{token: string}>} mint mints a stream token for it
 * @param {(type: string, data: any, id: string) => void} onEvent every new event
 * @param {(state: string) => void} onState "connecting", "live", "reconnecting", "ended"
 */
export function openStream({ path, params, mint, onEvent, onState }) {
  let source = null;
  let last = null;
  let stopped = false;
  let failures = 0;
  let timer = 0;

  const handle = (type) => (message) => {
    const id = message.lastEventId;
    if (id && (type === "log" || type === "status") && !isNewer(id, last)) return;
    if (id && isNewer(id, last)) last = id;
    let data = null;
    try {
      data = message.data ? JSON.parse(message.data) : null;
    } catch {
      return;
    }
    if (type === "end") {
      stop();
      onState("ended");
    }
    onEvent(type, data, id);
  };

  async function connect() {
    if (stopped) return;
    onState(failures ? "reconnecting" : "connecting");
    const query = new URLSearchParams(params);
    try {
      if (session.token) query.set("token", (await mint()).token);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        stop(); // no such job: nothing to come back for
        onState("not found");
      } else {
        retryLater(error);
      }
      return;
    }
    if (last) query.set("last_event_id", last);
    if (stopped) return;
    source = new EventSource(`${path}?${query}`);
    for (const type of EVENTS) source.addEventListener(type, handle(type));
    source.onopen = () => {
      failures = 0;
      onState("live");
    };
    source.onerror = () => {
      if (stopped) return;
      if (source.readyState === EventSource.CLOSED) {
        // refused (not a 200 event stream): reopen with a fresh token
        source.close();
        retryLater(null);
      } else {
        onState("reconnecting");
      }
    };
  }

  function retryLater(error) {
    failures += 1;
    onState(error && error.status === 401 ? "unauthorized" : "reconnecting");
    const delay = RECONNECT_MS[Math.min(failures - 1, RECONNECT_MS.length - 1)];
    timer = window.setTimeout(connect, delay);
  }

  function stop() {
    stopped = true;
    window.clearTimeout(timer);
    if (source) source.close();
  }

  connect();
}
