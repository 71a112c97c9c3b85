// The HTTP API with session handling. The access token lives in memory only; the refresh token
// is kept in IndexedDB (tokens.js) so a reload can resume the session. Refresh tokens rotate on
// every use and reusing a rotated one revokes the session, so refreshes are single-flight,
// within this tab (one promise) and across the tabs of this origin (one Web Lock): each tab
// reads the token inside the lock, so it always presents the newest one, never one that a
// tab reloaded at the same moment has just rotated.

import { forgetRefresh, hasHint, readRefresh, writeRefresh } from "./tokens.js";

const REFRESH_LOCK = "cc.refresh";

/** Run `fn` holding the cross-tab refresh lock (Web Locks: every secure context, which
 * includes http://localhost). Without it (plain http to another host) tabs may still race. */
function withRefreshLock(fn) {
  if (navigator.locks && navigator.locks.request) return navigator.locks.request(REFRESH_LOCK, fn);
  return fn();
}

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const AUTH_CODES = new Set(["unauthenticated", "token_invalid", "token_expired"]);

export class Api {
  constructor() {
    this.access = null;
    this.user = null;
    this._refreshing = null;
    this._adopted = null; // a single sign-on's token being written (adoptSignIn)
    this.onSessionEnded = () => {};
  }

  get hasSession() {
    return hasHint();
  }

  async _store(tokens) {
    this.access = tokens.access_token;
    this.user = tokens.user;
    await writeRefresh(tokens.refresh_token);
  }

  forget() {
    this.access = null;
    this.user = null;
    return forgetRefresh();
  }

  async register(username, password, displayName) {
    const body = { username, password };
    if (displayName) body.display_name = displayName;
    await this._store(await this._raw("POST", "/api/v1/auth/register", body));
  }

  async login(username, password) {
    await this._store(await this._raw("POST", "/api/v1/auth/login", { username, password }));
  }

  /** Rotate the refresh token; returns false (and forgets the session) when it is gone. */
  refresh() {
    if (!this._refreshing) {
      this._refreshing = withRefreshLock(() => this._refresh()).finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  async _refresh() {
    await this._adopted;
    const token = await readRefresh();
    if (!token) return false;
    try {
      // Committed before the lock is released, so the next tab reads this one.
      await this._store(await this._raw("POST", "/api/v1/auth/refresh", { refresh_token: token }));
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        await this.forget();
        this.onSessionEnded();
        return false;
      }
      throw err; // network trouble: the session may still be fine
    }
  }

  /** Whether single sign-on is offered: `{enabled, display_name}`. */
  oidcInfo() {
    return this._raw("GET", "/api/v1/auth/oidc");
  }

  /**
   * Takes over what single sign-on handed back in the URL fragment (`/#refresh_token=…` or
   * `/#login_error=code`) and clears the fragment, so tokens stay out of history and bookmarks.
   * Only the refresh token is kept: the first refresh yields the access token and the user.
   * Returns the error code, or null.
   */
  adoptSignIn() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (!params.has("refresh_token") && !params.has("login_error")) return null;
    history.replaceState(null, "", location.pathname + location.search);
    const refresh = params.get("refresh_token");
    if (!refresh) return params.get("login_error");
    this._adopted = writeRefresh(refresh);
    return null;
  }

  async logout() {
    try {
      if (this.access) await this._raw("POST", "/api/v1/auth/logout", {}, this.access);
    } finally {
      this.forget();
    }
  }

  /** An authenticated call; an expired access token is refreshed once and the call retried. */
  async call(method, path, body) {
    if (!this.access && !(await this.refresh())) {
      throw new ApiError(401, "unauthenticated", "not logged in");
    }
    try {
      return await this._raw(method, path, body, this.access);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && AUTH_CODES.has(err.code)) {
        if (await this.refresh()) return this._raw(method, path, body, this.access);
      }
      throw err;
    }
  }

  async _raw(method, path, body, token) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "network error");
    }
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const error = (payload && payload.error) || {};
      throw new ApiError(
        response.status,
        error.code || "http_" + response.status,
        error.message,
        error.details,
      );
    }
    return payload;
  }

  // -- resources -------------------------------------------------------------------------
  conversations() {
    return this.call("GET", "/api/v1/conversations");
  }
  conversation(id) {
    return this.call("GET", `/api/v1/conversations/${encodeURIComponent(id)}`);
  }
  /** Messages whose text contains `q` (any case), newest first, across my conversations. */
  search(q) {
    return this.call("GET", `/api/v1/search?q=${encodeURIComponent(q)}`);
  }
  /** People whose username or display-name word starts with `q` (autocomplete). */
  searchUsers(q) {
    return this.call("GET", `/api/v1/users?q=${encodeURIComponent(q)}`);
  }
  findUser(username) {
    return this.call("GET", `/api/v1/users?username=${encodeURIComponent(username)}`);
  }
  userById(id) {
    return this.call("GET", `/api/v1/users/${encodeURIComponent(id)}`);
  }
  openDirect(userId) {
    return this.call("POST", "/api/v1/conversations", { kind: "direct", user_id: userId });
  }
  createGroup(title, memberIds) {
    return this.call("POST", "/api/v1/conversations", {
      kind: "group",
      title,
      member_ids: memberIds,
    });
  }
  addMember(cid, userId) {
    return this.call("POST", `/api/v1/conversations/${encodeURIComponent(cid)}/members`, {
      user_id: userId,
    });
  }
  removeMember(cid, userId) {
    const path = `/api/v1/conversations/${encodeURIComponent(cid)}/members/`;
    return this.call("DELETE", path + encodeURIComponent(userId));
  }
  history(cid, { before, after, limit = 50 } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) q.set("before", String(before));
    if (after !== undefined) q.set("after", String(after));
    return this.call("GET", `/api/v1/conversations/${encodeURIComponent(cid)}/messages?${q}`);
  }
  presence() {
    return this.call("GET", "/api/v1/presence");
  }
}
