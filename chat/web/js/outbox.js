// Messages written but not yet acknowledged survive a reload: they are kept in this tab's
// sessionStorage (per tab, so two tabs never overwrite each other's queue; kept across reloads,
// gone with the tab) and put back into their conversations when the page starts again. They
// keep their client_id, so one that did reach the server before the reload is deduplicated
// there (`duplicate: true`) instead of being sent twice.

const PREFIX = "cc.outbox.";

export class Outbox {
  constructor(userId) {
    this.key = PREFIX + userId;
    this._last = null;
  }

  /** [{conversation_id, client_id, body, ts, status, error}] as last saved. */
  load() {
    try {
      const entries = JSON.parse(sessionStorage.getItem(this.key) || "[]");
      return Array.isArray(entries) ? entries : [];
    } catch {
      return [];
    }
  }

  /** Save every conversation's pending messages (only when they changed). */
  save(convs) {
    const entries = [];
    for (const conv of convs) {
      for (const p of conv.pending.values()) {
        entries.push({
          conversation_id: conv.id,
          client_id: p.client_id,
          body: p.body,
          ts: p.ts,
          status: p.status,
          error: p.error,
          errorVars: p.errorVars || {},
        });
      }
    }
    const text = JSON.stringify(entries);
    if (text === this._last) return;
    this._last = text;
    try {
      if (entries.length) sessionStorage.setItem(this.key, text);
      else sessionStorage.removeItem(this.key);
    } catch {
      // storage full or disabled: the queue still lives in memory
    }
  }
}
