// Tiny DOM helpers. Text is only ever set through textContent: message bodies and names
// come from other people and must never be parsed as HTML.

/**
 * h("button", {class: "x", onclick: fn, "aria-label": "..."}, "text", child, ...)
 * Strings become text nodes; null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Replace el's children with `children` (used for small, rarely changing parts). */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
}

/**
 * Keyed list update: `items` in order, each with a stable key. Existing elements are reused
 * (so focus and scroll survive), updated only when their signature changed, and moved into
 * place; elements whose key is gone are removed.
 */
export function reconcile(container, items, { key, sig, create, update }) {
  const byKey = new Map();
  for (const el of container.children) byKey.set(el.dataset.key, el);
  let index = 0;
  const keep = new Set();
  for (const item of items) {
    const k = key(item);
    keep.add(k);
    let el = byKey.get(k);
    const s = sig(item);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
      el._sig = null;
    }
    if (el._sig !== s) {
      update(el, item);
      el._sig = s;
    }
    const at = container.children[index];
    if (at !== el) container.insertBefore(el, at || null);
    index += 1;
  }
  for (const [k, el] of byKey) if (!keep.has(k)) el.remove();
}
