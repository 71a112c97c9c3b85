// Client message ids: random, within the server's rule (1-64 of A-Z a-z 0-9 _ . : -).
// crypto.getRandomValues works on plain http too (randomUUID needs a secure context).

export function clientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "w-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Length as the server counts it: code points, after trimming trailing white space. */
export function bodyLength(text) {
  return [...text.trimEnd()].length;
}
