// The open conversation: header, history with upward infinite scroll and day separators,
// pending/failed/edited/deleted states, "seen", typing indicator and the composer.
// Message text is set with textContent only, never parsed as HTML.

import { fill, h, reconcile } from "../dom.js";
import { errorText, formatAgo, formatDay, formatTime, t } from "../i18n.js";
import { bodyLength } from "../ids.js";

export class ConversationView {
  constructor(store, { onBack, onMembers }) {
    this.store = store;
    this.onMembers = onMembers;
    this.editing = null; // seq being edited
    this.confirmDelete = null;
    this.stick = true;
    this.title = h("h2", { class: "chat-title", id: "chat-title", dir: "auto" });
    this.subtitle = h("p", { class: "chat-sub muted" });
    this.membersButton = h("button", { type: "button", class: "members-btn", onclick: () => onMembers() }, t("group.manage"));
    this.older = h("button", { type: "button", class: "load-older link", onclick: () => this.loadOlder() }, t("chat.loadOlder"));
    this.start = h("p", { class: "muted start" }, t("chat.noOlder"));
    this.list = h("ol", { class: "messages", role: "log", "aria-label": t("chat.messages") });
    this.scroller = h("div", { class: "scroller", tabindex: "0", "aria-labelledby": "chat-title" }, this.older, this.start, this.list);
    this.scroller.addEventListener("scroll", () => this.onScroll());
    // One Tab stop for the whole list (roving tabindex): the current message, with its own
    // Edit/Delete; the arrow keys move between messages. So reaching the composer takes a few
    // Tab presses however many messages are shown.
    this.roving = null; // key of the current message
    this.list.addEventListener("keydown", (e) => this.onListKey(e));
    this.list.addEventListener("focusin", (e) => {
      const li = e.target.closest && e.target.closest("li.msg");
      if (li && li.dataset.key !== this.roving) {
        this.roving = li.dataset.key;
        this.updateRoving();
      }
    });
    this.typingLine = h("p", { class: "typing muted", "aria-live": "polite" });
    this.error = h("p", { class: "error", role: "alert", id: "composer-error" });
    this.counter = h("span", { class: "counter muted", "aria-live": "polite" });
    this.input = h("textarea", {
      id: "composer",
      rows: "2",
      placeholder: t("chat.composerPlaceholder"),
      "aria-describedby": "composer-error",
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      } else if (e.key === "Escape" && this.editing !== null) {
        this.cancelEdit();
      }
    });
    this.input.addEventListener("input", () => this.onInput());
    this.editBar = h(
      "div",
      { class: "edit-bar", hidden: true },
      h("span", {}, t("chat.editing")),
      h("button", { type: "button", class: "link", onclick: () => this.cancelEdit() }, t("chat.cancelEdit")),
    );
    this.sendButton = h("button", { type: "submit", class: "primary" }, t("chat.send"));
    this.form = h(
      "form",
      { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.editBar,
      h("label", { for: "composer", class: "visually-hidden" }, t("chat.composer")),
      h("div", { class: "row" }, this.input, this.sendButton),
      h("div", { class: "row meta-row" }, this.error, this.counter),
    );
    this.placeholder = h("p", { class: "muted placeholder" }, t("chat.empty"));
    this.body = h(
      "div",
      { class: "chat-body" },
      h(
        "header",
        { class: "chat-head" },
        h("button", { type: "button", class: "back", onclick: onBack, "aria-label": t("nav.back") }, "←"),
        h("div", { class: "chat-head-text" }, this.title, this.subtitle),
        this.membersButton,
      ),
      this.scroller,
      this.typingLine,
      this.form,
    );
    this.el = h("section", { class: "chat", "aria-labelledby": "chat-title" }, this.placeholder, this.body);
    this.current = null;
    // "last seen 5 minutes ago" ages without any event: refresh the header now and then.
    const ageing = setInterval(() => {
      if (!this.el.isConnected) clearInterval(ageing); // a rebuilt shell replaced this view
      else if (this.conv) this.render();
    }, 30000);
    this.highlight = null; // seq of the search hit to show highlighted
    this.revealing = null; // seq to scroll into view at the next render
  }

  /** Scroll message `seq` into view and highlight it (a search hit); focus goes to it. */
  reveal(seq) {
    this.highlight = seq;
    this.revealing = seq;
    this.stick = false;
    this.render();
  }

  get conv() {
    return this.store.active ? this.store.convs.get(this.store.active) : null;
  }

  focusComposer() {
    this.input.focus();
  }

  opened() {
    this.stick = true;
    this.highlight = null;
    this.editing = null;
    this.error.textContent = "";
    this.editBar.hidden = true;
    this.input.value = "";
    this.updateCounter();
    this.list.replaceChildren();
    this.roving = null;
  }

  onListKey(e) {
    const li = e.target;
    if (!(li instanceof HTMLElement) || !li.matches("li.msg")) return;
    const msgs = [...this.list.querySelectorAll(":scope > li.msg")];
    const at = msgs.indexOf(li);
    const to = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: msgs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = msgs[Math.max(0, Math.min(msgs.length - 1, to))];
    if (next) next.focus();
  }

  /** Only the current message (default: the newest) and its buttons are Tab stops. */
  updateRoving() {
    const msgs = this.list.querySelectorAll(":scope > li.msg");
    let current = null;
    for (const li of msgs) if (li.dataset.key === this.roving) current = li;
    if (!current) current = msgs[msgs.length - 1] || null;
    for (const li of msgs) {
      // Written only when it changes (long lists); the attribute, since an <li> without one
      // reports tabIndex -1 yet is not focusable.
      const want = li === current ? "0" : "-1";
      if (li.getAttribute("tabindex") !== want) li.setAttribute("tabindex", want);
      for (const button of li.querySelectorAll("button")) {
        if (button.getAttribute("tabindex") !== want) button.setAttribute("tabindex", want);
      }
    }
  }

  onScroll() {
    const s = this.scroller;
    this.stick = s.scrollHeight - s.scrollTop - s.clientHeight < 40;
    if (s.scrollTop < 60) this.loadOlder();
  }

  async loadOlder() {
    const conv = this.conv;
    if (!conv || !conv.loaded) return;
    if (!(await this.store.loadOlder(conv).catch(() => false))) return;
    // Still at the top (the page was short, or the wheel kept going while it loaded): go on,
    // once this render has placed the anchor. Each round needs a page that added messages.
    requestAnimationFrame(() => {
      requestAnimationFrame(() => {
        if (this.conv === conv && this.scroller.scrollTop < 60) this.loadOlder();
      });
    });
  }

  onInput() {
    this.error.textContent = "";
    this.updateCounter();
    const conv = this.conv;
    if (conv && this.input.value.trim() && this.editing === null) this.store.typing(conv);
  }

  updateCounter() {
    const n = bodyLength(this.input.value);
    const max = this.store.maxBody;
    this.counter.textContent = n > max * 0.9 ? t("chat.counter", { n, max }) : "";
    this.counter.classList.toggle("over", n > max);
  }

  async submit() {
    const conv = this.conv;
    if (!conv) return;
    const text = this.input.value;
    let error;
    if (this.editing !== null) {
      error = this.store.validate(text, conv, this.editing) || (await this.store.edit(conv, this.editing, text));
      if (!error) this.cancelEdit();
    } else {
      error = this.store.send(conv, text);
      if (!error) {
        conv._typingSent = 0; // the next keystroke starts a new typing notice at once
        this.input.value = "";
        this.stick = true;
      }
    }
    this.error.textContent = error ? errorText(error.code, error.vars) : "";
    this.updateCounter();
    this.input.focus();
  }

  startEdit(msg) {
    this.editing = msg.seq;
    this.editBar.hidden = false;
    this.input.value = msg.body;
    this.sendButton.textContent = t("chat.saveEdit");
    this.updateCounter();
    this.input.focus();
  }

  cancelEdit() {
    this.editing = null;
    this.editBar.hidden = true;
    this.input.value = "";
    this.sendButton.textContent = t("chat.send");
    this.updateCounter();
  }

  async remove(msg) {
    if (this.confirmDelete !== msg.seq) {
      this.confirmDelete = msg.seq;
      this.render();
      return;
    }
    this.confirmDelete = null;
    const error = await this.store.remove(this.conv, msg.seq);
    this.error.textContent = error ? errorText(error.code, error.vars) : "";
  }

  render() {
    const conv = this.conv;
    this.placeholder.hidden = Boolean(conv);
    this.body.hidden = !conv;
    if (!conv) {
      this.current = null;
      return;
    }
    if (this.current !== conv.id) {
      this.current = conv.id;
      this.opened();
    }
    const store = this.store;
    this.title.textContent = store.title(conv);
    if (conv.kind === "direct") {
      const other = store.otherMember(conv);
      const presence = other ? store.presenceOf(other.user_id) : { state: "offline", last_seen: null };
      const state = presence.state;
      this.subtitle.textContent = state === "offline" && presence.last_seen
        ? t("presence.lastSeen", { when: formatAgo(presence.last_seen) })
        : t(`presence.${state}`);
      this.subtitle.className = `chat-sub muted presence-${state}`;
      this.membersButton.hidden = true;
    } else {
      this.subtitle.textContent = t("chat.members", { n: conv.members.length });
      this.subtitle.className = "chat-sub muted";
      this.membersButton.hidden = false;
    }
    this.older.hidden = !conv.loaded || !conv.hasOlder;
    this.start.hidden = !conv.loaded || conv.hasOlder;

    const names = store.typingNames(conv);
    this.typingLine.textContent = names.length === 0
      ? ""
      : names.length === 1
        ? t("chat.typing.one", { name: names[0] })
        : t("chat.typing.many", { names: names.join(", ") });

    this.renderMessages(conv);
  }

  renderMessages(conv) {
    const store = this.store;
    const s = this.scroller;
    const stick = this.stick;
    // The reader's anchor: the first message (not a day separator, which moves to the top
    // when an older page of the same day arrives) whose bottom is below the top edge. Its
    // distance from the top edge is restored after the update, so inserting a page above
    // never moves what the reader is looking at (the scroller has overflow-anchor: none, so
    // the browser's own anchoring does not adjust a second time).
    let anchor = null;
    let anchorTop = 0;
    if (!stick) {
      for (const li of this.list.querySelectorAll(":scope > li.msg")) {
        if (li.offsetTop + li.offsetHeight > s.scrollTop) {
          anchor = li;
          anchorTop = li.offsetTop - s.scrollTop;
          break;
        }
      }
    }
    const { confirmed, pending } = store.timeline(conv);
    const other = conv.kind === "direct" ? store.otherMember(conv) : null;
    const lastMine = [...confirmed].reverse().find((m) => m.sender_id === store.me.id);
    const seenSeq = other && lastMine && other.read_seq >= lastMine.seq ? lastMine.seq : null;
    const items = [];
    let day = null;
    for (const m of confirmed) {
      const d = new Date(m.ts).toDateString();
      if (d !== day) {
        day = d;
        items.push({ type: "day", key: `day-${d}`, ts: m.ts });
      }
      items.push({ type: "msg", key: `m-${m.seq}`, msg: m, seen: m.seq === seenSeq });
    }
    for (const p of pending) {
      const d = new Date(p.ts).toDateString();
      if (d !== day) {
        day = d;
        items.push({ type: "day", key: `day-${d}`, ts: p.ts });
      }
      items.push({ type: "pending", key: `p-${p.client_id}`, msg: p });
    }
    reconcile(this.list, items, {
      key: (it) => it.key,
      sig: (it) =>
        it.type === "day"
          ? `day:${formatDay(it.ts)}`
          : JSON.stringify([
              it.msg.body,
              it.msg.deleted,
              it.msg.edited_ts,
              it.msg.status,
              it.msg.error,
              store.conn.ready,
              it.seen,
              this.confirmDelete === it.msg.seq,
              this.highlight === it.msg.seq,
              store.userName(it.msg.sender_id || store.me.id),
            ]),
      create: (it) => h("li", {}),
      update: (li, it) => (it.type === "day" ? this.fillDay(li, it) : this.fillMessage(li, it)),
    });
    if (stick) s.scrollTop = s.scrollHeight;
    else if (anchor && anchor.isConnected) s.scrollTop = anchor.offsetTop - anchorTop;
    this.updateRoving();
    if (this.revealing !== null) {
      const hit = this.list.querySelector(`li.msg[data-seq="${this.revealing}"]`);
      this.revealing = null;
      if (hit) {
        hit.scrollIntoView({ block: "center" });
        hit.focus({ preventScroll: true });
      }
    }
  }

  fillDay(li, it) {
    li.className = "day";
    li.setAttribute("role", "separator");
    li.replaceChildren(h("span", {}, formatDay(it.ts)));
  }

  fillMessage(li, it) {
    const store = this.store;
    const m = it.msg;
    const pending = it.type === "pending";
    const mine = pending || m.sender_id === store.me.id;
    const hit = !pending && this.highlight === m.seq;
    li.className = ["msg", mine ? "mine" : "theirs", pending ? m.status : "", m.deleted ? "deleted" : "", hit ? "hit" : ""]
      .filter(Boolean)
      .join(" ");
    if (pending) li.dataset.clientId = m.client_id;
    else {
      li.dataset.seq = String(m.seq);
      li.dataset.clientId = m.client_id || "";
    }
    const meta = [
      h("span", { class: "author", dir: "auto" }, store.userName(mine ? store.me.id : m.sender_id)),
      h("time", { datetime: new Date(m.ts).toISOString() }, formatTime(m.ts)),
    ];
    if (!pending && m.edited_ts && !m.deleted) meta.push(h("span", { class: "flag edited" }, t("chat.edited")));
    if (pending && m.status === "pending") {
      // Not connected: say it is waiting, not "sending" (it goes out on reconnect).
      const waiting = !store.conn.ready;
      meta.push(h("span", { class: `flag pending-flag${waiting ? " waiting" : ""}` }, t(waiting ? "chat.waiting" : "chat.pending")));
    }
    if (pending && m.status === "failed") {
      meta.push(h("span", { class: "flag failed-flag" }, `${t("chat.failed")}: ${errorText(m.error, m.errorVars || {})}`));
    }
    const body = m.deleted
      ? h("p", { class: "body muted" }, t("chat.deleted"))
      : h("p", { class: "body", dir: "auto" }, m.body);
    const actions = [];
    if (pending && m.status === "failed") {
      const conv = this.conv;
      actions.push(h("button", { type: "button", class: "retry", onclick: () => store.retry(conv, m.client_id) }, t("chat.retry")));
      actions.push(h("button", { type: "button", class: "discard", onclick: () => store.discard(conv, m.client_id) }, t("chat.discard")));
    }
    if (!pending && mine && !m.deleted) {
      actions.push(h("button", { type: "button", class: "edit", onclick: () => this.startEdit(m) }, t("chat.edit")));
      actions.push(
        h(
          "button",
          { type: "button", class: "delete", onclick: () => this.remove(m), onblur: () => this.resetDelete(m) },
          this.confirmDelete === m.seq ? t("chat.confirmDelete") : t("chat.delete"),
        ),
      );
    }
    const hadFocus = li.contains(document.activeElement) ? document.activeElement.className : null;
    fill(
      li,
      h("div", { class: "meta" }, meta),
      body,
      actions.length ? h("div", { class: "actions" }, actions) : null,
      it.seen ? h("p", { class: "seen muted" }, t("chat.seen")) : null,
    );
    if (hadFocus) li.querySelector(`.${hadFocus.split(" ")[0]}`)?.focus();
  }

  resetDelete(m) {
    if (this.confirmDelete === m.seq) {
      setTimeout(() => {
        if (this.confirmDelete === m.seq && !this.list.contains(document.activeElement)) {
          this.confirmDelete = null;
          this.render();
        }
      }, 200);
    }
  }
}
