// Wiring: session bootstrap, the shell (header, sidebar, conversation), the connection banner,
// language/theme switching. Everything else lives in its own module.

import { Api } from "./api.js";
import { $, fill, h } from "./dom.js";
import { apply as applyI18n, errorText, onLangChange, t } from "./i18n.js";
import "./theme.js";
import { Connection } from "./socket.js";
import { Store } from "./store.js";
import { ConversationView } from "./views/conversation.js";
import { membersDialog, newGroupDialog } from "./views/dialogs.js";
import { loginView } from "./views/login.js";
import { prefsView } from "./views/prefs.js";
import { Sidebar } from "./views/sidebar.js";

const root = $("#app");
const banner = $("#banner");
const api = new Api();
let conn = null;
let store = null;
let shell = null;
let bannerTimer = null;

function showLogin(mode = "login", notice = "") {
  teardown();
  const view = loginView(api, (next) => (next ? showLogin(next) : startSession()), mode);
  if (notice) view.querySelector(".auth-form").prepend(h("p", { class: "notice", role: "status" }, notice));
  root.replaceChildren(view);
  document.title = t("app.name");
}

function teardown() {
  if (conn) conn.stop();
  conn = null;
  store = null;
  shell = null;
  hideBanner();
}

async function startSession() {
  teardown();
  if (!api.access && !(await api.refresh().catch(() => false))) {
    // Either no session or the server is unreachable; a reload retries.
    if (api.hasSession) return offlineStart();
    return showLogin();
  }
  conn = new Connection(api);
  store = new Store(api, conn);
  store.me = api.user;
  store.rememberUser(api.user);
  conn.addEventListener("status", () => {
    updateBanner();
    store.changed(); // presence and pending messages are shown differently while offline
  });
  conn.addEventListener("terminal", (e) => onTerminal(e.detail.code));
  store.addEventListener("change", () => render());
  buildShell();
  try {
    await store.loadConversations();
    store.restoreOutbox(); // what this tab had not sent yet when it was reloaded
  } catch {
    // The socket's ready handler loads them again once the server answers.
  }
  conn.start();
  render();
}

function offlineStart() {
  root.replaceChildren(h("main", { class: "auth" }, h("p", { role: "alert" }, t("err.network"))));
  setTimeout(() => startSession(), 3000);
}

function onTerminal(code) {
  if (code === 4409 || code === 4403 || code === 4401) {
    api.forget();
    showLogin("login", t("conn.sessionEnded"));
    return;
  }
  updateBanner();
}

function buildShell() {
  const conversation = new ConversationView(store, {
    onBack: () => openConversation(null),
    onMembers: () => {
      const conv = store.convs.get(store.active);
      if (conv) membersDialog(store, conv, () => openConversation(null));
    },
  });
  const sidebar = new Sidebar(store, {
    onOpen: (id) => openConversation(id),
    onOpenAt: (id, seq) => openConversation(id, seq),
    onNewGroup: () => newGroupDialog(store, (id) => openConversation(id)),
  });
  const { username, display_name: name } = store.me;
  const signedIn = name && name !== username
    ? t("nav.signedInAsNamed", { name, username })
    : t("nav.signedInAs", { name: username });
  const me = h("span", { class: "me", dir: "auto" }, signedIn);
  const logout = h("button", { type: "button", class: "logout", onclick: () => doLogout() }, t("nav.logout"));
  const header = h(
    "header",
    { class: "top" },
    h("h1", {}, t("app.name")),
    me,
    h("details", { class: "settings" }, h("summary", {}, t("prefs.settings")), prefsView(t("nav.you", { username }))),
    logout,
  );
  const app = h("div", { class: "app" }, header, h("div", { class: "panes" }, sidebar.el, conversation.el));
  root.replaceChildren(app);
  shell = { app, sidebar, conversation };
}

/** Open a conversation; with `seq`, scrolled to that message and highlighted (search hits). */
async function openConversation(id, seq = null) {
  if (!store) return;
  if (id === null) {
    store.active = null;
    store.changed();
    shell.app.classList.remove("chat-open");
    return;
  }
  shell.app.classList.add("chat-open");
  try {
    await store.open(id);
    const conv = store?.convs.get(id);
    if (seq !== null && conv && (await store.loadUntil(conv, seq))) {
      shell?.conversation.reveal(seq);
      return;
    }
  } catch {
    // history failed to load (offline): the view shows what it has; reconnect reloads.
  }
  shell?.conversation.focusComposer();
}

async function doLogout() {
  const c = conn;
  teardown();
  if (c) c.stop();
  await api.logout().catch(() => {});
  showLogin();
}

function render() {
  if (!shell) return;
  shell.sidebar.render();
  shell.conversation.render();
  const conv = store.active && store.convs.get(store.active);
  const unread = [...store.convs.values()].reduce((n, c) => n + c.unread, 0);
  document.title = (unread ? `(${unread}) ` : "") + (conv ? `${store.title(conv)} · ` : "") + t("app.name");
}

function updateBanner() {
  clearTimeout(bannerTimer);
  if (!conn) return hideBanner();
  const state = conn.state;
  if (state === "open" || state === "idle") return hideBanner();
  if (state === "connecting" && !conn.everOpen) return hideBanner();
  let text;
  if (state === "offline" && conn.networkDown) {
    text = t("conn.noNetwork"); // the `online` event reconnects at once
  } else if (state === "offline") {
    const s = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
    text = t("conn.offline", { s });
    bannerTimer = setTimeout(updateBanner, 500);
  } else if (state === "connecting") {
    text = t("conn.connecting");
  } else {
    text = t("conn.sessionEnded");
  }
  const button = state === "offline" || state === "stopped"
    ? h("button", { type: "button", onclick: () => (conn.state === "stopped" ? location.reload() : conn.reconnectNow()) }, t("conn.retryNow"))
    : null;
  fill(banner, h("span", {}, text), button);
  banner.hidden = false;
  banner.dataset.state = state;
}

function hideBanner() {
  clearTimeout(bannerTimer);
  banner.hidden = true;
  banner.dataset.state = "open";
  banner.replaceChildren();
}

onLangChange(() => {
  applyI18n();
  if (store) {
    const active = store.active;
    buildShell();
    if (active) shell.app.classList.add("chat-open");
    render();
    updateBanner();
  } else {
    showLogin(root.querySelector("#auth-display") ? "register" : "login");
  }
});

api.onSessionEnded = () => {
  if (store) showLogin("login", t("conn.sessionEnded"));
};

applyI18n();
const signInError = api.adoptSignIn();
if (signInError) showLogin("login", errorText(signInError));
else if (api.hasSession) startSession();
else showLogin();
