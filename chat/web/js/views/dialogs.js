// Modal dialogs (native <dialog>: focus is trapped and Escape closes): create a group, and
// see/manage a group's members (the owner adds and removes; anyone can leave).

import { fill, h } from "../dom.js";
import { errorText, t } from "../i18n.js";
import { PeopleSearch } from "./people.js";

function dialog(titleKey, ...content) {
  const el = h(
    "dialog",
    { "aria-labelledby": "dialog-title" },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: "dialog-title" }, t(titleKey)),
      h("button", { type: "button", class: "close", "aria-label": t("dialog.close"), onclick: () => el.close() }, "×"),
    ),
    ...content,
  );
  el.addEventListener("close", () => el.remove());
  document.body.appendChild(el);
  el.showModal();
  return el;
}

async function resolveUsers(store, names) {
  const users = [];
  for (const name of names) {
    try {
      const user = await store.api.findUser(name);
      store.rememberUser(user);
      users.push(user);
    } catch (err) {
      const code = err.status === 400 || err.status === 404 ? "user_not_found" : err.code;
      throw Object.assign(new Error(code), { code, vars: { name } });
    }
  }
  return users;
}

export function newGroupDialog(store, onCreated) {
  const error = h("p", { class: "error", role: "alert" });
  const title = h("input", { id: "group-title", required: true, maxlength: "100" });
  const members = h("input", { id: "group-members", autocapitalize: "none", spellcheck: "false" });
  const form = h(
    "form",
    { class: "stack", onsubmit: (e) => submit(e) },
    h("label", { for: "group-title" }, t("group.title")),
    title,
    h("label", { for: "group-members" }, t("group.members")),
    members,
    error,
    h("div", { class: "row end" }, h("button", { type: "button", onclick: () => el.close() }, t("dialog.cancel")), h("button", { type: "submit", class: "primary" }, t("group.create"))),
  );
  const el = dialog("group.new", form);
  title.focus();

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    if (!title.value.trim()) {
      error.textContent = errorText("title_required");
      return;
    }
    const names = members.value
      .split(/[\s,]+/)
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s && s !== store.me.username);
    try {
      const users = await resolveUsers(store, names);
      const conv = await store.api.createGroup(title.value.trim(), users.map((u) => u.id));
      el.close();
      onCreated(store.addConversation(conv).id);
    } catch (err) {
      error.textContent = errorText(err.code || "network", err.vars || {});
    }
  }
}

export function membersDialog(store, conv, onLeft) {
  const error = h("p", { class: "error", role: "alert" });
  const list = h("ul", { class: "member-list" });
  const owner = store.isOwner(conv);

  function render() {
    fill(
      list,
      ...conv.members.map((m) => {
        const name = store.userName(m.user_id);
        const state = store.presenceOf(m.user_id).state;
        return h(
          "li",
          {},
          h("span", { class: `dot ${state}`, role: "img", "aria-label": t(`presence.${state}`) }),
          h("span", { class: "grow", dir: "auto" }, name),
          m.role === "owner" ? h("span", { class: "muted" }, t("group.owner")) : null,
          owner && m.user_id !== store.me.id
            ? h("button", { type: "button", class: "remove", onclick: () => remove(m.user_id), "aria-label": t("group.remove", { name }) }, "×")
            : null,
        );
      }),
    );
  }

  async function run(action) {
    error.textContent = "";
    try {
      await action();
      render();
    } catch (err) {
      error.textContent = errorText(err.code || "network", err.vars || {});
    }
  }

  function remove(userId) {
    run(async () => {
      await store.api.removeMember(conv.id, userId);
      conv.members = conv.members.filter((m) => m.user_id !== userId);
      store.changed();
    });
  }

  const add = h("input", { id: "member-add", autocapitalize: "none", spellcheck: "false", autocomplete: "off" });
  function addUser(user) {
    run(async () => {
      const updated = await store.api.addMember(conv.id, user.id);
      conv.members = updated.members;
      add.value = "";
      store.changed();
    });
  }
  const people = owner ? new PeopleSearch(store, add, addUser, "member-suggestions") : null;
  const addForm = owner
    ? h(
        "form",
        {
          class: "row",
          onsubmit: (e) => {
            e.preventDefault();
            const name = add.value.trim().toLowerCase();
            if (!name) {
              error.textContent = errorText("username_required");
              return;
            }
            people.close();
            run(async () => {
              const [user] = await resolveUsers(store, [name]);
              const updated = await store.api.addMember(conv.id, user.id);
              conv.members = updated.members;
              add.value = "";
              store.changed();
            });
          },
        },
        h("label", { for: "member-add", class: "visually-hidden" }, t("group.addLabel")),
        add,
        h("button", { type: "submit" }, t("group.add")),
      )
    : null;
  const leave = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: () =>
        run(async () => {
          await store.api.removeMember(conv.id, store.me.id);
          el.close();
          onLeft();
        }),
    },
    t("group.leave"),
  );
  render();
  const el = dialog("group.manage", list, addForm, people ? people.list : null, error, h("div", { class: "row end" }, leave));
  (add || leave).focus();
  return el;
}
