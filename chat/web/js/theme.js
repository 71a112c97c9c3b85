// Light and dark themes. "system" (the default) follows prefers-color-scheme live; an explicit
// choice is remembered. The resolved theme is set as <html data-theme="light|dark">.

const KEY = "cc.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");
let choice = ["light", "dark", "system"].includes(localStorage.getItem(KEY))
  ? localStorage.getItem(KEY)
  : "system";

export function themeChoice() {
  return choice;
}

export function setTheme(value) {
  choice = value;
  localStorage.setItem(KEY, value);
  apply();
}

export function apply() {
  const dark = choice === "dark" || (choice === "system" && media.matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

media.addEventListener("change", apply);
apply();
