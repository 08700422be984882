// The dashboard's entry point: the sign-in form, and the page the path asks for.

import { api, ApiError, session } from "./api.js";
import { showJob } from "./job.js";
import { showList } from "./list.js";

const main = document.getElementById("main");
const noticeElement = document.getElementById("notice");
const notice = {
  show(text) {
    noticeElement.textContent = text;
    noticeElement.hidden = false;
  },
  hide() {
    noticeElement.hidden = true;
  },
};

const login = document.getElementById("login");
const tokenInput = document.getElementById("login-token");
const sessionBox = document.getElementById("session");

function showSession() {
  const signedIn = Boolean(session.token);
  login.hidden = signedIn;
  sessionBox.hidden = !signedIn;
}

login.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) return;
  try {
    await api("/jobs?limit=1", { token });
  } catch (error) {
    notice.show(error instanceof ApiError && error.status === 401
      ? "This token is not known to the server."
      : `Could not sign in: ${error.message}`);
    return;
  }
  tokenInput.value = "";
  session.signIn(token);
  location.reload();
});

document.getElementById("logout").addEventListener("click", () => {
  session.signOut();
  location.reload();
});

showSession();

const jobPage = /^\/ui\/jobs\/([0-9a-fA-F-]{36})$/.exec(location.pathname);
if (jobPage) showJob(main, notice, jobPage[1]);
else showList(main, notice);
