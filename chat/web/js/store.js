// Client state: conversations, messages, pending sends, typing, presence, read pointers.
//
// Invariants this module keeps:
// - each conversation's `seq` is the highest event seq applied; events at or below it are
//   duplicates and are dropped, so a message is never shown twice;
// - a pending (optimistic) message is keyed by its client_id and disappears the moment the
//   server's copy (same sender and client_id) is applied, from a live event, a resume replay or
//   a history page; retries reuse the client_id, so the server deduplicates them;
// - after every (re)connect the client resumes from its own `seq`, so nothing sent while it was
//   away is missed; `not_recoverable` drops the conversation's messages and reloads history;
// - a message whose encoded frame is over the server's frame limit is refused before it is
//   queued, and any send that fails is marked failed on its own: one message never blocks the
//   others (each is sent independently, with its own client_id) — sending.js;
// - the queue of unacknowledged messages survives a reload (outbox.js).

import { ApiError } from "./api.js";
import { sending } from "./sending.js";

export const PAGE = 50;
const HISTORY_MAX_LIMIT = 100; // the server's history_max_limit (docs/protocol.md)
const JUMP_MAX_PAGES = 50; // a search hit up to 5000 events back is loaded
const TYPING_MS = 5000;

export class Store extends EventTarget {
  constructor(api, conn) {
    super();
    this.api = api;
    this.conn = conn;
    this.me = null;
    this.users = new Map();
    this.convs = new Map();
    this.presence = new Map();
    this.active = null;
    this.maxBody = 4000;
    this._userFetch = new Map();
    this._scheduled = false;
    conn.positions = () => {
      const seen = {};
      for (const [id, conv] of this.convs) if (Number.isInteger(conv.seq)) seen[id] = conv.seq;
      return seen;
    };
    conn.addEventListener("ready", (e) => this._onReady(e.detail.frame));
    conn.addEventListener("frame", (e) => this._onFrame(e.detail));
  }

  /** Coalesce change notifications into one render per frame. */
  changed() {
    if (this.outbox) this.outbox.save(this.convs.values());
    if (this._scheduled) return;
    this._scheduled = true;
    requestAnimationFrame(() => {
      this._scheduled = false;
      this.dispatchEvent(new Event("change"));
    });
  }

  // -- users -----------------------------------------------------------------------------
  rememberUser(user) {
    this.users.set(user.id, user);
  }

  userName(id) {
    const user = this.users.get(id);
    if (user) return user.display_name || user.username;
    this._fetchUser(id);
    return "…";
  }

  _fetchUser(id) {
    if (this._userFetch.has(id)) return;
    const job = this.api
      .userById(id)
      .then((user) => {
        this.rememberUser(user);
        this.changed();
      })
      .catch(() => {})
      .finally(() => setTimeout(() => this._userFetch.delete(id), 30000));
    this._userFetch.set(id, job);
  }

  /**
   * A contact's presence as we may show it: while we are not connected what we knew is stale,
   * so nobody is shown online ("unknown" until the next `ready` reloads presence).
   */
  presenceOf(userId) {
    if (!this.conn.ready) return { state: "unknown", last_seen: null };
    return this.presence.get(userId) || { state: "offline", last_seen: null };
  }

  // -- conversations ---------------------------------------------------------------------
  async loadConversations() {
    const { conversations } = await this.api.conversations();
    const seen = new Set();
    for (const summary of conversations) {
      seen.add(summary.id);
      this._mergeSummary(summary);
    }
    for (const id of [...this.convs.keys()]) if (!seen.has(id)) this._drop(id);
    this.changed();
  }

  _newConv(c, seq) {
    return {
      id: c.id,
      kind: c.kind,
      title: c.title,
      created_by: c.created_by,
      created_at: c.created_at,
      members: c.members,
      seq,
      lastMessage: null,
      unread: 0,
      messages: new Map(),
      later: new Map(), // edits/deletes of messages not loaded yet, by target seq
      pending: new Map(),
      typing: new Map(),
      loaded: false,
      loading: false,
      hasOlder: true,
      oldest: null,
    };
  }

  _mergeSummary(s) {
    let conv = this.convs.get(s.id);
    if (!conv) {
      conv = this._newConv(s, s.last_seq);
      this.convs.set(s.id, conv);
    }
    conv.members = s.members;
    conv.title = s.title;
    if (s.last_seq >= conv.seq) {
      // A shown conversation moves only with the events it applies (a resume replay may still
      // be on its way); one not shown yet can jump, its history loads when it is opened.
      if (!conv.loaded) conv.seq = s.last_seq;
      conv.lastMessage = s.last_message;
      conv.unread = conv.id === this.active && this._visible() ? 0 : s.unread;
    }
    return conv;
  }

  /** A conversation object from POST /conversations (one just created or opened). */
  addConversation(c) {
    let conv = this.convs.get(c.id);
    if (!conv) {
      conv = this._newConv(c, 0);
      this.convs.set(c.id, conv);
      // Its real position and last message come with the list; its people's presence too.
      this.loadConversations().catch(() => {});
      this.loadPresence().catch(() => {});
    }
    conv.members = c.members;
    this.changed();
    return conv;
  }

  _drop(id) {
    this.convs.delete(id);
    if (this.active === id) this.active = null;
  }

  sorted() {
    const activity = (c) => (c.lastMessage ? c.lastMessage.ts : c.created_at);
    return [...this.convs.values()].sort((a, b) => activity(b) - activity(a));
  }

  title(conv) {
    if (conv.kind === "group") return conv.title || "…";
    const other = this.otherMember(conv);
    return other ? this.userName(other.user_id) : this.userName(this.me.id);
  }

  otherMember(conv) {
    return conv.members.find((m) => m.user_id !== this.me.id) || null;
  }

  isOwner(conv) {
    return conv.members.some((m) => m.user_id === this.me.id && m.role === "owner");
  }

  // -- opening and history ---------------------------------------------------------------
  async open(id) {
    this.active = id;
    const conv = this.convs.get(id);
    if (!conv) return;
    this.changed();
    if (!conv.loaded) await this._loadNewest(conv);
    this.markRead(conv);
  }

  async _loadNewest(conv) {
    conv.loading = true;
    try {
      const { messages } = await this.api.history(conv.id, { limit: PAGE });
      this._insertHistory(conv, messages);
      conv.loaded = true;
      conv.hasOlder = messages.length === PAGE && messages[0].seq > 1;
    } finally {
      conv.loading = false;
      this.changed();
    }
  }

  async loadOlder(conv, limit = PAGE) {
    if (conv.loading || !conv.hasOlder || conv.oldest === null) return false;
    conv.loading = true;
    try {
      const { messages } = await this.api.history(conv.id, { before: conv.oldest, limit });
      this._insertHistory(conv, messages);
      conv.hasOlder = messages.length === limit && messages[0].seq > 1;
      return messages.length > 0;
    } finally {
      conv.loading = false;
      this.changed();
    }
  }

  /**
   * Load older pages until message `seq` is loaded (a search hit far back), in the largest
   * pages history allows; bounded, so a hit years back cannot fetch forever. The pages stay
   * contiguous with what is shown, so scrolling and anchoring keep working around it.
   */
  async loadUntil(conv, seq) {
    for (let i = 0; i < JUMP_MAX_PAGES && !conv.messages.has(seq); i += 1) {
      if (!conv.hasOlder || (conv.oldest !== null && conv.oldest <= seq)) break;
      if (!(await this.loadOlder(conv, HISTORY_MAX_LIMIT))) break;
    }
    return conv.messages.has(seq);
  }

  _insertHistory(conv, messages) {
    for (const m of messages) {
      if (!conv.messages.has(m.seq)) conv.messages.set(m.seq, { ...m });
      const later = conv.later.get(m.seq);
      if (later) this._applyChange(conv.messages.get(m.seq), later);
      this._confirm(conv, m);
      if (conv.oldest === null || m.seq < conv.oldest) conv.oldest = m.seq;
    }
  }

  /** Forget what we have and load the newest page again (the gap cannot be replayed). */
  async reload(conv) {
    conv.messages.clear();
    conv.later.clear();
    conv.loaded = false;
    conv.oldest = null;
    conv.hasOlder = true;
    await this.loadConversations();
    if (this.active === conv.id) await this._loadNewest(conv);
    this.changed();
  }

  // -- live events -----------------------------------------------------------------------
  _onFrame(f) {
    switch (f.type) {
      case "message":
        return this._onEvent(f);
      case "typing":
        return this._onTyping(f);
      case "presence":
        this.presence.set(f.user_id, { state: f.state, last_seen: f.last_seen });
        return this.changed();
      case "read":
        return this._onRead(f);
      case "conversation":
        return this._onJoined(f);
      case "conversation_left":
        this._drop(f.conversation_id);
        return this.changed();
      case "error":
        if (f.code === "not_recoverable" && this.convs.has(f.conversation_id)) {
          this.reload(this.convs.get(f.conversation_id)).catch(() => {});
        }
        return;
      default:
        return;
    }
  }

  _onEvent(ev) {
    const conv = this.convs.get(ev.conversation_id);
    if (!conv) {
      this.loadConversations().catch(() => {});
      return;
    }
    if (ev.seq <= conv.seq) return; // already applied: exactly once
    const gap = ev.seq > conv.seq + 1 && conv.loaded;
    conv.seq = ev.seq;
    if (ev.kind === "message") {
      const msg = {
        conversation_id: conv.id,
        seq: ev.seq,
        sender_id: ev.sender_id,
        client_id: ev.client_id,
        body: ev.body,
        ts: ev.ts,
        edited_ts: null,
        deleted: false,
      };
      conv.messages.set(ev.seq, msg);
      conv.lastMessage = msg;
      this._confirm(conv, msg);
      conv.typing.delete(ev.sender_id);
      if (ev.sender_id !== this.me.id) {
        if (conv.id === this.active && this._visible()) this.markRead(conv);
        else conv.unread += 1;
      }
    } else {
      const target = conv.messages.get(ev.target_seq);
      if (target) this._applyChange(target, ev);
      else conv.later.set(ev.target_seq, ev);
      if (conv.lastMessage && conv.lastMessage.seq === ev.target_seq) {
        conv.lastMessage = { ...conv.lastMessage };
        this._applyChange(conv.lastMessage, ev);
      }
    }
    if (gap) this.reload(conv).catch(() => {});
    this.changed();
  }

  _applyChange(msg, ev) {
    if (msg.deleted) return;
    if (ev.kind === "delete") {
      msg.deleted = true;
      msg.body = "";
      msg.edited_ts = ev.ts;
    } else if (ev.kind === "edit" && (msg.edited_ts === null || msg.edited_ts <= ev.ts)) {
      msg.body = ev.body;
      msg.edited_ts = ev.ts;
    }
  }

  /** The server's copy of one of my messages arrived: drop the optimistic echo. */
  _confirm(conv, msg) {
    if (msg.sender_id === this.me.id && msg.client_id) conv.pending.delete(msg.client_id);
  }

  _onTyping(f) {
    const conv = this.convs.get(f.conversation_id);
    if (!conv || f.user_id === this.me.id) return;
    conv.typing.set(f.user_id, Date.now() + TYPING_MS);
    setTimeout(() => this.changed(), TYPING_MS + 50);
    this.changed();
  }

  typingNames(conv) {
    const now = Date.now();
    const names = [];
    for (const [uid, until] of conv.typing) {
      if (until > now) names.push(this.userName(uid));
      else conv.typing.delete(uid);
    }
    return names;
  }

  _onRead(f) {
    const conv = this.convs.get(f.conversation_id);
    if (!conv) return;
    const member = conv.members.find((m) => m.user_id === f.user_id);
    if (member) member.read_seq = Math.max(member.read_seq, f.seq);
    if (f.user_id === this.me.id && f.seq >= conv.seq) conv.unread = 0;
    this.changed();
  }

  async _onJoined(f) {
    if (!this.convs.has(f.conversation.id)) {
      this.convs.set(f.conversation.id, this._newConv(f.conversation, f.last_seq));
    }
    this.changed();
    await this.loadConversations().catch(() => {});
    await this.loadPresence().catch(() => {});
  }

  /** Presence frames only tell changes; a new contact's current state comes from here. */
  async loadPresence() {
    const { presence } = await this.api.presence();
    for (const p of presence) this.presence.set(p.user_id, p);
    this.changed();
  }

  // -- (re)connect -----------------------------------------------------------------------
  async _onReady(frame) {
    if (frame.limits) this.maxBody = frame.limits.max_body_chars;
    // The gaps were asked for in the auth frame: the server replays them in order (or sends
    // `not_recoverable`, handled in _onFrame) before anything live.
    try {
      await this.loadConversations();
      await this.loadPresence();
    } catch (err) {
      if (err.code === "disconnected" || err.code === "offline") return; // next ready redoes it
      console.warn("resume failed", err);
    }
    this.restoreOutbox();
    for (const conv of this.convs.values()) this.flush(conv);
    if (this.active) {
      const conv = this.convs.get(this.active);
      if (conv) this.markRead(conv);
    }
    this.changed();
  }

  typing(conv) {
    const now = Date.now();
    if (conv._typingSent && now - conv._typingSent < 2000) return;
    conv._typingSent = now;
    this.conn.send({ type: "typing", conversation_id: conv.id });
  }

  markRead(conv) {
    conv.unread = 0;
    const mine = conv.members.find((m) => m.user_id === this.me.id);
    if (mine && mine.read_seq >= conv.seq) return;
    if (conv.seq > 0 && this.conn.send({ type: "read", conversation_id: conv.id, seq: conv.seq })) {
      if (mine) mine.read_seq = conv.seq;
    }
    this.changed();
  }

  _visible() {
    return document.visibilityState !== "hidden";
  }

  /** The view's list of items: confirmed messages by seq, then pending ones in send order. */
  timeline(conv) {
    const confirmed = [...conv.messages.values()].sort((a, b) => a.seq - b.seq);
    return { confirmed, pending: [...conv.pending.values()] };
  }

  errorFrom(err) {
    if (err instanceof ApiError) return { code: err.code, vars: {} };
    return { code: "network", vars: {} };
  }
}

// Sending (queue, validation, edit, delete) lives in its own module, as methods of Store.
Object.assign(Store.prototype, sending);
