// English and Brazilian Portuguese. The choice is remembered in localStorage; the first visit
// follows the browser's language. Elements with data-i18n="key" are re-translated on switch;
// data-i18n-attr="aria-label:key,placeholder:key" does the same for attributes.

const KEY = "cc.lang";
export const LANGUAGES = { en: "English", "pt-BR": "Português (Brasil)" };

const en = {
  "app.name": "chatcluster",
  "auth.login": "Log in",
  "auth.register": "Create account",
  "auth.username": "Username",
  "auth.password": "Password",
  "auth.displayName": "Display name (optional)",
  "auth.toRegister": "No account yet? Create one",
  "auth.toLogin": "Already have an account? Log in",
  "auth.intro": "Self-hosted real-time chat.",
  "auth.sso": "Sign in with {name}",
  "auth.or": "or",
  "prefs.settings": "Settings",
  "prefs.language": "Language",
  "prefs.theme": "Theme",
  "theme.system": "System",
  "theme.light": "Light",
  "theme.dark": "Dark",
  "nav.logout": "Log out",
  "nav.conversations": "Conversations",
  "nav.back": "Back to conversations",
  "nav.signedInAs": "Signed in as {name}",
  "nav.signedInAsNamed": "Signed in as {name} (@{username})",
  "list.empty": "No conversations yet. Start one with a username.",
  "list.noMessages": "No messages yet",
  "list.unread": "{n} unread",
  "list.you": "You: {text}",
  "list.deleted": "Message deleted",
  "search.label": "Search messages",
  "search.placeholder": "words to find",
  "search.go": "Search",
  "search.results": "Search results",
  "search.searching": "Searching…",
  "search.count": "{n} found",
  "search.capped": "The newest {n} matches are shown; there may be more. Add words to narrow the search.",
  "search.in": "in {title}",
  "search.none": "No messages contain “{q}”.",
  "dm.label": "Start a direct message",
  "dm.placeholder": "name or username",
  "dm.suggestions": "People",
  "dm.start": "Message",
  "group.new": "New group",
  "group.title": "Group name",
  "group.members": "Members (usernames, comma separated)",
  "group.create": "Create group",
  "group.manage": "Members",
  "group.add": "Add member",
  "group.addLabel": "Username to add",
  "group.remove": "Remove {name}",
  "group.leave": "Leave group",
  "group.owner": "owner",
  "dialog.close": "Close",
  "dialog.cancel": "Cancel",
  "chat.empty": "Select a conversation or start a new one.",
  "chat.loadOlder": "Load earlier messages",
  "chat.noOlder": "Beginning of the conversation",
  "chat.messages": "Messages",
  "chat.composer": "Message",
  "chat.composerPlaceholder": "Write a message…",
  "chat.send": "Send",
  "chat.edit": "Edit",
  "chat.delete": "Delete",
  "chat.confirmDelete": "Really delete?",
  "chat.saveEdit": "Save",
  "chat.cancelEdit": "Cancel editing",
  "chat.editing": "Editing your message",
  "chat.edited": "edited",
  "chat.deleted": "This message was deleted",
  "chat.pending": "Sending…",
  "chat.waiting": "Not sent yet: waiting for the connection",
  "chat.failed": "Not sent",
  "chat.retry": "Retry",
  "chat.discard": "Discard",
  "chat.seen": "Seen",
  "chat.today": "Today",
  "chat.yesterday": "Yesterday",
  "chat.typing.one": "{name} is typing…",
  "chat.typing.many": "{names} are typing…",
  "chat.counter": "{n}/{max}",
  "chat.members": "{n} members",
  "presence.online": "online",
  "presence.idle": "idle",
  "presence.offline": "offline",
  "presence.unknown": "status unknown",
  "presence.lastSeen": "offline · last seen {when}",
  "time.justNow": "just now",
  "nav.you": "You are @{username}",
  "conn.noNetwork": "You are offline: no network. Messages you write are sent when it is back.",
  "conn.offline": "You are offline. Reconnecting in {s} s…",
  "conn.connecting": "Reconnecting…",
  "conn.retryNow": "Reconnect now",
  "conn.sessionEnded": "Your session has ended. Please log in again.",
  "err.body_empty": "The message is empty.",
  "err.body_too_long": "The message is too long ({n} of at most {max} characters).",
  "err.frame_too_large":
    "The message is too large to send: encoded it takes {bytes} bytes, at most {max} fit (control characters and emoji take several). Shorten it.",
  "err.user_not_found": "There is no user named “{name}”.",
  "err.username_required": "Enter a username.",
  "err.self_dm": "That is you. Pick someone else.",
  "err.invalid_username": "Usernames have 3–32 characters: letters, digits, “_”, “.” or “-”.",
  "err.invalid_password": "Passwords have 8–256 characters.",
  "err.username_taken": "That username is already taken.",
  "err.invalid_credentials": "Wrong username or password.",
  "err.rate_limited": "Too many messages. Wait a moment and retry.",
  "err.not_owner": "Only the group owner can do that.",
  "err.already_member": "That person is already a member.",
  "err.group_full": "The group is full.",
  "err.title_required": "Give the group a name.",
  "err.network": "Cannot reach the server. Check your connection.",
  "err.oidc_denied": "The sign-in provider did not sign you in.",
  "err.oidc_state": "That sign-in expired or was started in another tab. Try again.",
  "err.oidc_refused": "The sign-in provider's answer was refused. Try again.",
  "err.idp_unavailable": "The sign-in provider cannot be reached. Try again later.",
  "err.user_disabled": "This account is disabled.",
  "err.generic": "Something went wrong ({code}).",
};

const ptBR = {
  "app.name": "chatcluster",
  "auth.login": "Entrar",
  "auth.register": "Criar conta",
  "auth.username": "Nome de usuário",
  "auth.password": "Senha",
  "auth.displayName": "Nome de exibição (opcional)",
  "auth.toRegister": "Ainda não tem conta? Crie uma",
  "auth.toLogin": "Já tem uma conta? Entre",
  "auth.intro": "Chat em tempo real auto-hospedado.",
  "auth.sso": "Entrar com {name}",
  "auth.or": "ou",
  "prefs.settings": "Ajustes",
  "prefs.language": "Idioma",
  "prefs.theme": "Tema",
  "theme.system": "Sistema",
  "theme.light": "Claro",
  "theme.dark": "Escuro",
  "nav.logout": "Sair",
  "nav.conversations": "Conversas",
  "nav.back": "Voltar às conversas",
  "nav.signedInAs": "Conectado como {name}",
  "nav.signedInAsNamed": "Conectado como {name} (@{username})",
  "list.empty": "Nenhuma conversa ainda. Comece uma com um nome de usuário.",
  "list.noMessages": "Nenhuma mensagem ainda",
  "list.unread": "{n} não lidas",
  "list.you": "Você: {text}",
  "list.deleted": "Mensagem apagada",
  "search.label": "Buscar mensagens",
  "search.placeholder": "palavras a encontrar",
  "search.go": "Buscar",
  "search.results": "Resultados da busca",
  "search.searching": "Buscando…",
  "search.count": "{n} encontradas",
  "search.capped": "As {n} mensagens mais recentes são mostradas; pode haver mais. Acrescente palavras para refinar a busca.",
  "search.in": "em {title}",
  "search.none": "Nenhuma mensagem contém “{q}”.",
  "dm.label": "Iniciar uma mensagem direta",
  "dm.placeholder": "nome ou nome de usuário",
  "dm.suggestions": "Pessoas",
  "dm.start": "Conversar",
  "group.new": "Novo grupo",
  "group.title": "Nome do grupo",
  "group.members": "Membros (nomes de usuário, separados por vírgula)",
  "group.create": "Criar grupo",
  "group.manage": "Membros",
  "group.add": "Adicionar membro",
  "group.addLabel": "Nome de usuário a adicionar",
  "group.remove": "Remover {name}",
  "group.leave": "Sair do grupo",
  "group.owner": "dono",
  "dialog.close": "Fechar",
  "dialog.cancel": "Cancelar",
  "chat.empty": "Escolha uma conversa ou comece uma nova.",
  "chat.loadOlder": "Carregar mensagens anteriores",
  "chat.noOlder": "Início da conversa",
  "chat.messages": "Mensagens",
  "chat.composer": "Mensagem",
  "chat.composerPlaceholder": "Escreva uma mensagem…",
  "chat.send": "Enviar",
  "chat.edit": "Editar",
  "chat.delete": "Apagar",
  "chat.confirmDelete": "Apagar mesmo?",
  "chat.saveEdit": "Salvar",
  "chat.cancelEdit": "Cancelar edição",
  "chat.editing": "Editando sua mensagem",
  "chat.edited": "editada",
  "chat.deleted": "Esta mensagem foi apagada",
  "chat.pending": "Enviando…",
  "chat.waiting": "Ainda não enviada: aguardando a conexão",
  "chat.failed": "Não enviada",
  "chat.retry": "Tentar de novo",
  "chat.discard": "Descartar",
  "chat.seen": "Vista",
  "chat.today": "Hoje",
  "chat.yesterday": "Ontem",
  "chat.typing.one": "{name} está digitando…",
  "chat.typing.many": "{names} estão digitando…",
  "chat.counter": "{n}/{max}",
  "chat.members": "{n} membros",
  "presence.online": "online",
  "presence.idle": "ausente",
  "presence.offline": "offline",
  "presence.unknown": "status desconhecido",
  "presence.lastSeen": "offline · visto por último {when}",
  "time.justNow": "agora há pouco",
  "nav.you": "Você é @{username}",
  "conn.noNetwork": "Você está sem conexão: sem rede. O que você escrever será enviado quando ela voltar.",
  "conn.offline": "Você está sem conexão. Reconectando em {s} s…",
  "conn.connecting": "Reconectando…",
  "conn.retryNow": "Reconectar agora",
  "conn.sessionEnded": "Sua sessão terminou. Entre novamente.",
  "err.body_empty": "A mensagem está vazia.",
  "err.body_too_long": "A mensagem é longa demais ({n} de no máximo {max} caracteres).",
  "err.frame_too_large":
    "A mensagem é grande demais para enviar: codificada ocupa {bytes} bytes, cabem no máximo {max} (caracteres de controle e emojis ocupam vários). Encurte-a.",
  "err.user_not_found": "Não existe usuário chamado “{name}”.",
  "err.username_required": "Digite um nome de usuário.",
  "err.self_dm": "Esse é você. Escolha outra pessoa.",
  "err.invalid_username":
    "Nomes de usuário têm de 3 a 32 caracteres: letras, dígitos, “_”, “.” ou “-”.",
  "err.invalid_password": "Senhas têm de 8 a 256 caracteres.",
  "err.username_taken": "Esse nome de usuário já está em uso.",
  "err.invalid_credentials": "Usuário ou senha incorretos.",
  "err.rate_limited": "Mensagens demais. Espere um pouco e tente de novo.",
  "err.not_owner": "Só o dono do grupo pode fazer isso.",
  "err.already_member": "Essa pessoa já é membro.",
  "err.group_full": "O grupo está cheio.",
  "err.title_required": "Dê um nome ao grupo.",
  "err.network": "Não foi possível falar com o servidor. Verifique sua conexão.",
  "err.oidc_denied": "O provedor de login não autorizou a entrada.",
  "err.oidc_state": "Esse login expirou ou foi iniciado em outra aba. Tente de novo.",
  "err.oidc_refused": "A resposta do provedor de login foi recusada. Tente de novo.",
  "err.idp_unavailable": "Não foi possível falar com o provedor de login. Tente mais tarde.",
  "err.user_disabled": "Esta conta está desativada.",
  "err.generic": "Algo deu errado ({code}).",
};

const DICTS = { en, "pt-BR": ptBR };
let current = initial();
const listeners = new Set();

function initial() {
  const saved = localStorage.getItem(KEY);
  if (saved && DICTS[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("pt") ? "pt-BR" : "en";
}

export function lang() {
  return current;
}

export function setLang(code) {
  if (!DICTS[code]) return;
  current = code;
  localStorage.setItem(KEY, code);
  apply();
  for (const fn of listeners) fn(code);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

export function t(key, vars = {}) {
  const text = DICTS[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** An error's user-facing text: a translation for known codes, a generic line otherwise. */
export function errorText(code, vars = {}) {
  const key = `err.${code}`;
  return key in en ? t(key, vars) : t("err.generic", { code });
}

/** Translate static markup: data-i18n for text, data-i18n-attr for attributes. */
export function apply(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr, t(key));
    }
  }
}

/**
 * The locale for dates and times: the user's own (the browser's languages) when it is a
 * variant of the interface language (en-GB for English: 1 Dec, 24-hour clock), else the
 * interface language itself, so a date never mixes two languages.
 */
export function locale() {
  const base = current.split("-")[0];
  const own = (navigator.languages || [navigator.language]).find((l) => l && l.split("-")[0] === base);
  return own || current;
}

export function formatTime(ts) {
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(ts);
}

/** How long ago `ts` was: "just now", "5 minutes ago", "3 hours ago", else the date. */
export function formatAgo(ts, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - ts) / 1000));
  if (seconds < 60) return t("time.justNow");
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: "auto" });
  if (seconds < 3600) return rtf.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 86400) return rtf.format(-Math.floor(seconds / 3600), "hour");
  return formatDateTime(ts);
}

/** A full date and time, e.g. for search results. */
export function formatDateTime(ts) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(ts);
}

export function formatDay(ts) {
  const day = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (day.toDateString() === today.toDateString()) return t("chat.today");
  if (day.toDateString() === yesterday.toDateString()) return t("chat.yesterday");
  return new Intl.DateTimeFormat(locale(), { dateStyle: "long" }).format(day);
}
