// Sending, as methods of Store (mixed in by store.js): the queue of my messages, validation
// before anything is queued, edits and deletes. Guarantees (see store.js): a message over the
// body or frame limit is refused before it is queued; each queued message is sent on its own
// with its own client_id, so one that fails never blocks the others; the queue survives a
// reload (outbox.js).

import { bodyLength, clientId } from "./ids.js";
import { Outbox } from "./outbox.js";
import { frameBytes } from "./socket.js";

// Stand-ins as long as the real ones, to measure a frame before its client_id and ref exist.
const SAMPLE_CLIENT_ID = clientId();
const SAMPLE_REF = "r9999999999";

class Sending {
  /** Put back what this tab had queued before a reload (conversations must be loaded). */
  restoreOutbox() {
    if (!this.outbox) this.outbox = new Outbox(this.me.id);
    for (const entry of this.outbox.load()) {
      const conv = this.convs.get(entry.conversation_id);
      if (!conv || conv.pending.has(entry.client_id)) continue;
      conv.pending.set(entry.client_id, { ...entry, inflight: false });
    }
    this.changed();
  }

  /** Validate and queue a message; returns an error {code, vars} or null. */
  send(conv, text) {
    const error = this.validate(text, conv);
    if (error) return error;
    const id = clientId();
    conv.pending.set(id, {
      client_id: id,
      body: text.trimEnd(),
      ts: Date.now(),
      status: "pending",
      inflight: false,
      error: null,
    });
    this.flush(conv);
    this.changed();
    return null;
  }

  /** `seq` given: the text of an edit of that message, else of a new message. */
  validate(text, conv, seq = null) {
    if (!text.trim()) return { code: "body_empty", vars: {} };
    const n = bodyLength(text);
    if (n > this.maxBody) return { code: "body_too_long", vars: { n, max: this.maxBody } };
    const frame = { type: seq === null ? "send" : "edit", ref: SAMPLE_REF, conversation_id: conv.id };
    if (seq !== null) frame.seq = seq;
    Object.assign(frame, { client_id: SAMPLE_CLIENT_ID, body: text.trimEnd() });
    const bytes = frameBytes(frame);
    const max = this.conn.maxFrameBytes;
    if (bytes > max) return { code: "frame_too_large", vars: { bytes, max } };
    return null;
  }

  /** Forget a failed message (it was never stored by the server). */
  discard(conv, id) {
    conv.pending.delete(id);
    this.changed();
  }

  retry(conv, id) {
    const p = conv.pending.get(id);
    if (!p) return;
    p.status = "pending";
    p.error = null;
    this.flush(conv);
    this.changed();
  }

  /** Send every queued message of the conversation, in order, with its original client_id. */
  flush(conv) {
    if (!this.conn.ready) return;
    for (const p of conv.pending.values()) {
      if (p.status !== "pending" || p.inflight) continue;
      p.inflight = true;
      this.conn
        .request({ type: "send", conversation_id: conv.id, client_id: p.client_id, body: p.body })
        .then((ack) => {
          p.inflight = false;
          if (conv.messages.has(ack.seq) || ack.seq <= conv.seq) {
            const msg = conv.messages.get(ack.seq);
            if (!msg || msg.client_id === p.client_id) conv.pending.delete(p.client_id);
          }
        })
        .catch((err) => {
          p.inflight = false;
          if (err.code === "disconnected" || err.code === "offline") return; // resent on ready
          p.status = "failed";
          p.error = err.code || "internal";
          p.errorVars = err.code === "frame_too_large" ? { bytes: err.bytes, max: err.max } : {};
        })
        .finally(() => this.changed());
    }
  }

  async edit(conv, seq, text) {
    const error = this.validate(text, conv, seq);
    if (error) return error;
    try {
      await this.conn.request({
        type: "edit",
        conversation_id: conv.id,
        seq,
        client_id: clientId(),
        body: text.trimEnd(),
      });
      return null;
    } catch (err) {
      return { code: err.code || "internal", vars: {} };
    }
  }

  async remove(conv, seq) {
    try {
      await this.conn.request({ type: "delete", conversation_id: conv.id, seq, client_id: clientId() });
      return null;
    } catch (err) {
      return { code: err.code || "internal", vars: {} };
    }
  }
}

/** The methods, to be copied onto Store.prototype. */
export const sending = Object.fromEntries(
  Object.getOwnPropertyNames(Sending.prototype)
    .filter((name) => name !== "constructor")
    .map((name) => [name, Sending.prototype[name]]),
);
