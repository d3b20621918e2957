// The dashboard shell: sign-in, the connection state, and hash routes
//   #/live  #/live/<conversationId>  #/history  #/history/<conversationId>

import { createApi } from "./api.js";
import { Auth } from "./auth.js";
import { BoardView } from "./board.js";
import { ConversationView } from "./conversation.js";
import { DetailView } from "./detail.js";
import { $, clear, toast } from "./dom.js";
import { shortId } from "./format.js";
import { HistoryView } from "./history.js";
import { Monitor } from "./monitor.js";

const auth = new Auth();
const app = { auth, api: null, monitor: null, view: null };
window.voicehubStats = window.voicehubStats || { playback: null, mic: null };

const STATES = {
  connecting: ["Connecting…", "pill-muted"],
  syncing: ["Syncing…", "pill-muted"],
  connected: ["Connected", "pill-ok"],
  reconnecting: ["Reconnecting…", "pill-warn"],
  disconnected: ["Offline", "pill-bad"],
  forbidden: ["No live access", "pill-bad"],
};

function showLogin(message = "") {
  $("#shell").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#api-key").focus();
}

async function onLogin(event) {
  event.preventDefault();
  const input = $("#api-key");
  const button = $("#login-submit");
  button.disabled = true;
  $("#login-error").textContent = "";
  try {
    await auth.login(input.value);
    input.value = "";
    await startShell();
  } catch (error) {
    $("#login-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

async function startShell() {
  $("#login").hidden = true;
  $("#shell").hidden = false;
  clear($("#whoami"), shortId(auth.subject));
  $("#whoami").title = `Signed in as ${auth.subject}`;
  app.api = createApi(auth);
  app.monitor = new Monitor(auth);
  app.monitor.on("state", showState);
  let lastError = "";
  let lastErrorAt = 0;
  app.monitor.on("error", (error) => {
    const message = error.message || String(error);
    if (message === lastError && Date.now() - lastErrorAt < 10_000) return; // one toast per burst of the same failure
    lastError = message;
    lastErrorAt = Date.now();
    toast(message, "error");
  });
  const count = () => {
    const live = [...app.monitor.conversations.values()].filter((e) => !e.ended).length;
    $("#live-count").textContent = String(live);
  };
  for (const name of ["added", "ended", "removed", "snapshot"]) app.monitor.on(name, count);
  if (!location.hash || location.hash === "#/") location.hash = "#/live";
  route();
  try {
    await app.monitor.start();
  } catch (error) {
    if (app.monitor && app.monitor.state !== "forbidden") toast(`Cannot connect to the hub: ${error.message || error}`, "error");
  }
}

function showState(state) {
  const seen = (window.voicehubStats.states ||= []);
  if (seen[seen.length - 1] !== state) seen.push(state);
  const [label, kind] = STATES[state] || STATES.disconnected;
  const pill = $("#conn-state");
  pill.className = `pill ${kind}`;
  pill.dataset.state = state;
  pill.querySelector(".label").textContent = label;
  const banner = $("#banner");
  if (state === "reconnecting") {
    banner.textContent = "Connection to the hub lost. Reconnecting… transcripts resume where they left off.";
    banner.hidden = false;
  } else if (state === "forbidden") {
    banner.textContent = "This API key lacks the monitor:read scope: live calls are not available. The history still works.";
    banner.hidden = false;
  } else if (state === "disconnected") {
    banner.textContent = "Disconnected from the hub. Retrying every few seconds.";
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

function route() {
  if (!app.monitor) return;
  const [, section = "live", id] = location.hash.split("/");
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === section);
  if (app.view) app.view.unmount();
  document.title = section === "history" ? "History · VoiceHub" : "Live calls · VoiceHub";
  const root = clear($("#view"));
  if (section === "history") app.view = id ? new DetailView(app, id) : new HistoryView(app);
  else app.view = id ? new ConversationView(app, id) : new BoardView(app);
  app.view.mount(root);
}

async function logout(message = "") {
  if (app.view) app.view.unmount();
  app.view = null;
  if (app.monitor) await app.monitor.stop().catch(() => {});
  app.monitor = null;
  auth.logout();
  history.replaceState(null, "", location.pathname);
  showLogin(message);
}

async function boot() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#logout").addEventListener("click", () => logout());
  window.addEventListener("hashchange", route);
  auth.onLost = (message) => { if (app.monitor) logout(`Signed out: ${message}`); };
  if (!window.signalR || !window.signalR.protocols || !window.signalR.protocols.msgpack) {
    showLogin("The SignalR browser client is not installed on this hub (run ./scripts/install).");
    $("#login-submit").disabled = true;
    return;
  }
  try {
    if (await auth.restore()) {
      await startShell();
      return;
    }
  } catch (error) {
    showLogin(error.message);
    return;
  }
  showLogin();
}

boot();
