// The conversation list (sorted by activity, unread badges, presence dots for direct
// messages), the "message a username" form, the "new group" button and message search.

import { h, reconcile } from "../dom.js";
import { PeopleSearch } from "./people.js";
import { errorText, formatDateTime, t } from "../i18n.js";

// The server answers at most this many hits, newest first (GET /api/v1/search): a full page
// means "at least this many", never "exactly".
const SEARCH_PAGE = 50;

export class Sidebar {
  constructor(store, { onOpen, onOpenAt, onNewGroup }) {
    this.store = store;
    this.onOpen = onOpen;
    this.onOpenAt = onOpenAt;
    this.list = h("ul", { class: "conv-list", "aria-label": t("nav.conversations") });
    this.empty = h("p", { class: "muted empty" }, t("list.empty"));
    this.dmError = h("p", { class: "error", role: "alert", id: "dm-error" });
    this.dmInput = h("input", {
      id: "dm-username",
      placeholder: t("dm.placeholder"),
      autocapitalize: "none",
      spellcheck: "false",
      autocomplete: "off",
      "aria-describedby": "dm-error",
    });
    this.people = new PeopleSearch(store, this.dmInput, (user) => this.openWith(user));
    const dmForm = h(
      "form",
      { class: "dm-form", onsubmit: (e) => this.startDirect(e) },
      h("label", { for: "dm-username" }, t("dm.label")),
      h("div", { class: "row combo" }, this.dmInput, h("button", { type: "submit" }, t("dm.start"))),
      this.people.list,
      this.dmError,
    );
    this.searchInput = h("input", {
      id: "search-q",
      type: "search",
      placeholder: t("search.placeholder"),
      maxlength: "200",
      autocomplete: "off",
      "aria-describedby": "search-status",
    });
    this.searchStatus = h("p", { class: "muted", role: "status", id: "search-status" });
    this.searchResults = h("ul", { class: "search-results", "aria-label": t("search.results") });
    const searchForm = h(
      "form",
      { class: "search-form", role: "search", onsubmit: (e) => this.search(e) },
      h("label", { for: "search-q" }, t("search.label")),
      h("div", { class: "row" }, this.searchInput, h("button", { type: "submit" }, t("search.go"))),
      this.searchStatus,
      this.searchResults,
    );
    this.el = h(
      "nav",
      { class: "sidebar", "aria-label": t("nav.conversations") },
      dmForm,
      searchForm,
      h("button", { type: "button", class: "new-group", onclick: onNewGroup }, t("group.new")),
      h("h2", { class: "list-title" }, t("nav.conversations")),
      this.empty,
      this.list,
    );
  }

  async startDirect(event) {
    event.preventDefault();
    this.dmError.textContent = "";
    const name = this.dmInput.value.trim().toLowerCase();
    if (!name) {
      this.dmError.textContent = errorText("username_required");
      return;
    }
    if (name === this.store.me.username) {
      this.dmError.textContent = errorText("self_dm");
      return;
    }
    this.people.close();
    try {
      await this.openWith(await this.store.api.findUser(name));
    } catch (err) {
      const code = err.status === 400 || err.code === "not_found" ? "user_not_found" : err.code;
      this.dmError.textContent = errorText(code || "network", { name });
    }
  }

  /** Open (or create) the direct conversation with `user`. */
  async openWith(user) {
    this.dmError.textContent = "";
    this.store.rememberUser(user);
    try {
      const conv = this.store.addConversation(await this.store.api.openDirect(user.id));
      this.dmInput.value = "";
      this.onOpen(conv.id);
    } catch (err) {
      this.dmError.textContent = errorText(err.code || "network", { name: user.username });
    }
  }

  async search(event) {
    event.preventDefault();
    const q = this.searchInput.value.trim();
    this.searchResults.replaceChildren();
    if (!q) {
      this.searchStatus.textContent = "";
      return;
    }
    this.searchStatus.textContent = t("search.searching");
    let found;
    try {
      found = (await this.store.api.search(q)).messages;
    } catch (err) {
      this.searchStatus.textContent = errorText(err.code || "network");
      return;
    }
    if (!found.length) this.searchStatus.textContent = t("search.none", { q });
    else if (found.length >= SEARCH_PAGE) this.searchStatus.textContent = t("search.capped", { n: found.length });
    else this.searchStatus.textContent = t("search.count", { n: found.length });
    this.searchResults.replaceChildren(...found.map((m) => this.searchResult(m)));
  }

  /** One hit: who wrote it, the text, where and when (in the user's date format). */
  searchResult(m) {
    const store = this.store;
    const conv = store.convs.get(m.conversation_id);
    const where = conv && conv.kind === "group" ? t("search.in", { title: store.title(conv) }) : "";
    const when = new Date(m.ts);
    return h(
      "li",
      {},
      h(
        "button",
        { type: "button", class: "search-hit", onclick: () => this.onOpenAt(m.conversation_id, m.seq) },
        h("span", { class: "author", dir: "auto" }, store.userName(m.sender_id)),
        h("span", { class: "preview", dir: "auto" }, m.body),
        h(
          "span",
          { class: "muted hit-meta" },
          where ? h("span", { class: "where", dir: "auto" }, where) : null,
          h("time", { datetime: when.toISOString() }, formatDateTime(m.ts)),
        ),
      ),
    );
  }

  render() {
    const store = this.store;
    const convs = store.sorted();
    this.empty.hidden = convs.length > 0;
    reconcile(this.list, convs, {
      key: (c) => c.id,
      sig: (c) => {
        const other = c.kind === "direct" ? store.otherMember(c) : null;
        const presence = other ? store.presenceOf(other.user_id).state : "";
        return JSON.stringify([
          store.title(c),
          c.lastMessage && [c.lastMessage.seq, c.lastMessage.body, c.lastMessage.deleted],
          c.unread,
          presence,
          c.id === store.active,
        ]);
      },
      create: () => h("li", {}),
      update: (li, c) => this.fill(li, c),
    });
  }

  fill(li, c) {
    const store = this.store;
    const title = store.title(c);
    const parts = [];
    if (c.kind === "direct") {
      const other = store.otherMember(c);
      const state = other ? store.presenceOf(other.user_id).state : "offline";
      parts.push(
        h("span", { class: `dot ${state}`, role: "img", "aria-label": t(`presence.${state}`) }),
      );
    } else {
      parts.push(h("span", { class: "dot group", "aria-hidden": "true" }, "#"));
    }
    let preview = t("list.noMessages");
    const last = c.lastMessage;
    if (last) {
      const text = last.deleted ? t("list.deleted") : last.body.split("\n")[0];
      preview = last.sender_id === store.me.id ? t("list.you", { text }) : text;
    }
    const badge = c.unread
      ? h("span", { class: "badge", "aria-label": t("list.unread", { n: c.unread }) }, String(c.unread))
      : null;
    const button = h(
      "button",
      {
        type: "button",
        class: "conv",
        "data-conv-id": c.id,
        "aria-current": c.id === store.active ? "true" : null,
        onclick: () => this.onOpen(c.id),
      },
      parts,
      h(
        "span",
        { class: "conv-text" },
        h("span", { class: "conv-title", dir: "auto" }, title),
        h("span", { class: "preview", dir: "auto" }, preview),
      ),
      badge,
    );
    const hadFocus = li.contains(document.activeElement);
    li.replaceChildren(button);
    if (hadFocus) button.focus();
  }
}
