// People search with autocomplete for the "start a direct message" field: an ARIA combobox
// over GET /api/v1/users?q= (prefix of a username or of a display-name word). Arrow keys move
// through the suggestions, Enter or a click picks one; typing an exact username still works.

import { h } from "../dom.js";
import { t } from "../i18n.js";

const DEBOUNCE_MS = 150;

export class PeopleSearch {
  /** `input` is the text field; `onPick(user)` runs when a suggestion is chosen; `listId`
   * names the suggestion list (unique in the page). */
  constructor(store, input, onPick, listId = "dm-suggestions") {
    this.listId = listId;
    this.store = store;
    this.input = input;
    this.onPick = onPick;
    this.users = [];
    this.active = -1;
    this._timer = null;
    this._asked = 0; // answers to older queries are dropped
    this.list = h("ul", { id: this.listId, class: "suggestions", role: "listbox", "aria-label": t("dm.suggestions"), hidden: true });
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", this.listId);
    input.setAttribute("aria-expanded", "false");
    input.addEventListener("input", () => this._schedule());
    input.addEventListener("keydown", (e) => this._key(e));
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  _schedule() {
    clearTimeout(this._timer);
    const q = this.input.value.trim();
    if (!q) return this.close();
    this._timer = setTimeout(() => this._search(q), DEBOUNCE_MS);
  }

  async _search(q) {
    const asked = ++this._asked;
    let users;
    try {
      users = (await this.store.api.searchUsers(q)).users;
    } catch {
      return; // the plain "Message" button still works with an exact username
    }
    if (asked !== this._asked || this.input.value.trim() !== q) return;
    this.users = users.filter((u) => u.id !== this.store.me.id);
    for (const u of this.users) this.store.rememberUser(u);
    this.active = -1;
    this._render();
  }

  _render() {
    this.list.replaceChildren(
      ...this.users.map((u, i) =>
        h(
          "li",
          {
            id: `${this.listId}-${i}`,
            role: "option",
            class: "suggestion",
            "aria-selected": i === this.active ? "true" : "false",
            onmousedown: (e) => e.preventDefault(), // keep focus in the field
            onclick: () => this._pick(i),
          },
          h("span", { class: "name", dir: "auto" }, u.display_name || u.username),
          h("span", { class: "muted handle" }, `@${u.username}`),
        ),
      ),
    );
    const open = this.users.length > 0;
    this.list.hidden = !open;
    this.input.setAttribute("aria-expanded", String(open));
    if (this.active >= 0) this.input.setAttribute("aria-activedescendant", `${this.listId}-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  _key(e) {
    if (this.list.hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = this.users.length;
      this.active = e.key === "ArrowDown" ? (this.active + 1) % n : (this.active - 1 + n) % n;
      this._render();
    } else if (e.key === "Enter" && this.active >= 0) {
      e.preventDefault();
      this._pick(this.active);
    } else if (e.key === "Escape") {
      this.close();
    }
  }

  _pick(i) {
    const user = this.users[i];
    this.close();
    if (user) this.onPick(user);
  }

  close() {
    clearTimeout(this._timer);
    this._asked += 1;
    this.users = [];
    this.active = -1;
    this._render();
  }
}
