// Language and theme pickers (labelled selects), used on the login screen and in the header.

import { h } from "../dom.js";
import { LANGUAGES, lang, setLang, t } from "../i18n.js";
import { setTheme, themeChoice } from "../theme.js";

/** `whoami`: a line naming the signed-in user, first in the header's Settings popover. */
export function prefsView(whoami = null) {
  const langSelect = h(
    "select",
    { id: "pref-lang", onchange: (e) => setLang(e.target.value) },
    Object.entries(LANGUAGES).map(([code, name]) =>
      h("option", { value: code, selected: code === lang(), lang: code }, name),
    ),
  );
  const themeSelect = h(
    "select",
    { id: "pref-theme", onchange: (e) => setTheme(e.target.value) },
    ["system", "light", "dark"].map((v) =>
      h("option", { value: v, selected: v === themeChoice() }, t(`theme.${v}`)),
    ),
  );
  return h(
    "div",
    { class: "prefs" },
    whoami ? h("p", { class: "whoami", dir: "auto" }, whoami) : null,
    h("label", { for: "pref-lang" }, t("prefs.language")),
    langSelect,
    h("label", { for: "pref-theme" }, t("prefs.theme")),
    themeSelect,
  );
}
