// Log in or register. Errors are shown translated from the server's stable codes.

import { h } from "../dom.js";
import { errorText, t } from "../i18n.js";
import { prefsView } from "./prefs.js";

export function loginView(api, onDone, mode = "login") {
  const register = mode === "register";
  const error = h("p", { class: "error", role: "alert", id: "auth-error" });
  const username = h("input", {
    id: "auth-username",
    name: "username",
    autocomplete: "username",
    required: true,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "auth-password",
    name: "password",
    type: "password",
    autocomplete: register ? "new-password" : "current-password",
    required: true,
  });
  const display = register
    ? h("input", { id: "auth-display", name: "display_name", autocomplete: "nickname" })
    : null;
  const submit = h("button", { type: "submit", class: "primary" }, t(register ? "auth.register" : "auth.login"));

  async function onSubmit(event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      if (register) await api.register(username.value.trim(), password.value, display.value.trim());
      else await api.login(username.value.trim(), password.value);
      onDone();
    } catch (err) {
      error.textContent = errorText(err.code || "network");
      submit.disabled = false;
    }
  }

  const form = h(
    "form",
    { class: "auth-form", onsubmit: onSubmit, "aria-describedby": "auth-error", novalidate: true },
    h("h2", {}, t(register ? "auth.register" : "auth.login")),
    h("label", { for: "auth-username" }, t("auth.username")),
    username,
    h("label", { for: "auth-password" }, t("auth.password")),
    password,
    register ? h("label", { for: "auth-display" }, t("auth.displayName")) : null,
    display,
    error,
    submit,
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => onDone(register ? "login" : "register"),
      },
      t(register ? "auth.toLogin" : "auth.toRegister"),
    ),
  );
  const view = h(
    "main",
    { class: "auth" },
    h("header", { class: "auth-head" }, h("h1", {}, t("app.name")), h("p", {}, t("auth.intro"))),
    form,
    prefsView(),
  );
  offerSingleSignOn(api, form);
  queueMicrotask(() => username.focus());
  return view;
}

/** Adds "Sign in with <provider>" when the server offers it (a plain link: the server
 * redirects to the provider and back). Without it, or offline, the form stays as it is. */
async function offerSingleSignOn(api, form) {
  let info;
  try {
    info = await api.oidcInfo();
  } catch {
    return;
  }
  if (!info || !info.enabled) return;
  const link = h(
    "a",
    { class: "button sso", id: "auth-sso", href: "/api/v1/auth/oidc/login" },
    t("auth.sso", { name: info.display_name }),
  );
  form.append(h("p", { class: "or" }, t("auth.or")), link);
}
