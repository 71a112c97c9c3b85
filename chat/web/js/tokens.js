// Where the refresh token lives between page loads. IndexedDB is the source of truth: its
// transactions are committed in the browser process, so a tab that reads after another tab's
// write sees it. localStorage is only a synchronous hint ("is there a session?", read at
// startup): Chromium syncs it between renderer processes asynchronously, so a tab reading it
// right after another tab rotated the token can get the old, now revoked one.

const HINT_KEY = "cc.refresh";
const DB_NAME = "chatcluster";
const STORE = "session";
const KEY = "refresh_token";
let opening = null;

function db() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opening;
}

async function run(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const tx = conn.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export function hasHint() {
  return Boolean(localStorage.getItem(HINT_KEY));
}

/** The current refresh token (IndexedDB; the hint when IndexedDB is unusable or empty). */
export async function readRefresh() {
  try {
    const stored = await run("readonly", (s) => s.get(KEY));
    if (stored) return stored;
  } catch {
    // private modes without IndexedDB: the hint is all there is
  }
  return localStorage.getItem(HINT_KEY);
}

/** Store a new refresh token; resolves once it is committed. */
export async function writeRefresh(token) {
  localStorage.setItem(HINT_KEY, token);
  try {
    await run("readwrite", (s) => s.put(token, KEY));
  } catch {
    // see readRefresh
  }
}

export function forgetRefresh() {
  localStorage.removeItem(HINT_KEY);
  return run("readwrite", (s) => s.delete(KEY)).catch(() => {});
}
