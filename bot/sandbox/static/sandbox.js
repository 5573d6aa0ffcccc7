// The sandbox page: pick a persona, chat with the bot as them. State comes from one WebSocket
// (every persona's history, then each change); actions are small JSON/multipart POSTs.

import { groups, renderGroup } from "./render.js";
import { drawPicker } from "./map.js";

const $ = (id) => document.getElementById(id);

const state = {
  lang: localStorage.getItem("sandbox.lang") || (navigator.language.startsWith("zh") ? "zh" : "en"),
  texts: {},
  personas: [],
  active: localStorage.getItem("sandbox.persona") || "resident_zh",
  chats: new Map(), // persona key -> Map(message id -> message)
  keyboards: new Map(), // persona key -> reply keyboard or null
  keyboardOpen: new Map(), // persona key -> shown although one-time and used
  unread: new Map(),
  district: null,
  pendingLocation: null, // a reply-keyboard button that asked for a location, if any
};

function format(template, fields) {
  return (template || "").replace(/\{(\w+)\}/g, (_, name) => fields[name] ?? "");
}

function tr(key, fields = {}) {
  return format(state.texts[key] || key, fields);
}

// --- talking to the server ------------------------------------------------------------------

async function post(path, body) {
  const isForm = body instanceof FormData;
  const response = await fetch(`/api/personas/${encodeURIComponent(state.active)}/${path}`, {
    method: "POST",
    // The server acts only on requests with this header, which no other site's page can send.
    headers: { "X-Sandbox-Page": "1", ...(isForm ? {} : { "Content-Type": "application/json" }) },
    body: isForm ? body : JSON.stringify(body),
  });
  if (!response.ok) {
    const reason = (await response.json().catch(() => ({}))).error || response.statusText;
    showToast(tr("sandbox.failed", { reason }));
  }
}

const actions = {
  sendText: (text) => post("text", { text }),
  pressInline: (messageId, data) => post("callback", { message_id: messageId, data }),
  pressReply(button) {
    if (button.request_location) {
      state.pendingLocation = button.text;
      openMap();
    } else {
      post("reply", { text: button.text });
    }
  },
  sendLocation(latitude, longitude) {
    const button = state.pendingLocation;
    state.pendingLocation = null;
    return button ? post("reply", { text: button, latitude, longitude }) : post("location", { latitude, longitude });
  },
  sendPhoto(file, caption) {
    const form = new FormData();
    form.append("photo", file, file.name || "photo.jpg");
    if (caption) form.append("caption", caption);
    return post("photo", form);
  },
};

function connect(attempt = 0) {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`);
  socket.addEventListener("open", () => {
    attempt = 0;
    $("offline").hidden = true;
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    $("offline").hidden = false;
    $("offline").textContent = tr("sandbox.offline");
    setTimeout(() => connect(attempt + 1), Math.min(500 * 2 ** attempt, 8000));
  });
}

function receive(item) {
  const key = item.persona;
  if (item.type === "history") {
    state.chats.set(key, new Map(item.messages.map((m) => [m.id, m])));
    state.keyboards.set(key, item.keyboard);
  } else if (item.type === "message") {
    const chat = state.chats.get(key) || new Map();
    state.chats.set(key, chat);
    const isNew = !chat.has(item.message.id);
    if (item.message.deleted) chat.delete(item.message.id);
    else chat.set(item.message.id, item.message);
    if (isNew && !item.message.deleted && item.message.from === "bot" && key !== state.active) {
      state.unread.set(key, (state.unread.get(key) || 0) + 1);
    }
  } else if (item.type === "keyboard") {
    state.keyboards.set(key, item.keyboard);
    state.keyboardOpen.delete(key);
  } else if (item.type === "toast") {
    if (key !== state.active) return;
    if (item.alert) showAlert(item.text);
    else showToast(item.text);
    return;
  }
  if (key === state.active) renderChat();
  renderPersonas();
}

// --- drawing ------------------------------------------------------------------------------------

function personaLabel(p) {
  const scope = p.scope ? (state.lang === "en" ? p.scope.name_en : p.scope.name_zh) : "";
  return tr(`sandbox.persona.${p.key}`, { scope });
}

function renderPersonas() {
  const nav = $("personas");
  nav.replaceChildren();
  for (const p of state.personas) {
    const button = document.createElement("button");
    button.type = "button";
    button.role = "tab";
    button.dataset.persona = p.key;
    button.setAttribute("aria-selected", String(p.key === state.active));
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.name;
    const role = document.createElement("span");
    role.className = "role";
    role.textContent = personaLabel(p);
    button.title = `${p.name} · ${personaLabel(p)}`;
    button.append(name, role);
    const unread = state.unread.get(p.key);
    if (unread) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(unread);
      button.append(badge);
    }
    button.addEventListener("click", () => choose(p.key));
    nav.append(button);
  }
}

// Follow the newest message unless the reader scrolled up, also while photos load and grow.
let stickToBottom = true;

function followBottom() {
  const pane = $("chat");
  if (stickToBottom) pane.scrollTop = pane.scrollHeight;
}

function renderChat() {
  const pane = $("chat");
  const messages = [...(state.chats.get(state.active) || new Map()).values()].sort((a, b) => a.id - b.id);
  const ctx = { actions, texts: state.texts, district: state.district };
  pane.replaceChildren(...groups(messages).map((g) => renderGroup(g, ctx)));
  if (!messages.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = tr("sandbox.empty");
    pane.append(empty);
  }
  pane.dataset.persona = state.active;
  for (const img of pane.querySelectorAll("img")) img.addEventListener("load", followBottom);
  renderKeyboard();
  followBottom();
}

function renderKeyboard() {
  const box = $("keyboard");
  const keyboard = state.keyboards.get(state.active);
  const toggle = $("keyboard-button");
  toggle.hidden = !keyboard;
  box.replaceChildren();
  const wanted = state.keyboardOpen.get(state.active);
  box.hidden = !keyboard || !(wanted ?? !keyboard.hidden);
  if (!keyboard) return;
  for (const row of keyboard.rows) {
    const line = document.createElement("div");
    line.className = "row";
    for (const button of row) {
      const node = document.createElement("button");
      node.type = "button";
      node.textContent = button.request_location ? `📍 ${button.text}` : button.text;
      node.dataset.text = button.text;
      node.addEventListener("click", () => actions.pressReply(button));
      line.append(node);
    }
    box.append(line);
  }
}

function renderTexts() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = tr("sandbox.title");
  $("title").textContent = tr("sandbox.title");
  $("intro").textContent = tr("sandbox.intro");
  $("lang").textContent = tr("sandbox.other_language");
  $("send").textContent = tr("sandbox.send");
  $("text").placeholder = tr("sandbox.placeholder");
  $("photo-button").title = $("photo-button").ariaLabel = tr("sandbox.photo");
  $("location-button").title = $("location-button").ariaLabel = tr("sandbox.location");
  $("keyboard-button").title = $("keyboard-button").ariaLabel = tr("sandbox.keyboard");
  $("map-title").textContent = tr("sandbox.map_title");
  $("map-close").textContent = tr("sandbox.close");
  $("alert-ok").textContent = tr("sandbox.ok");
  const chiefLane = state.district?.lanes.find((l) => l.has_chief);
  const laneName = chiefLane ? (state.lang === "en" ? chiefLane.name_en : chiefLane.name_zh) : "";
  $("map-hint").textContent = tr("sandbox.map_hint", { lane: laneName });
}

let toastTimer = 0;
function showToast(text) {
  const toast = $("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, 3000);
}

function showAlert(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
}

// --- the location panel ---------------------------------------------------------------------

function openMap() {
  const map = $("map");
  map.replaceChildren(drawPicker(state.district, state.lang, (lat, lon) => {
    closeMap();
    actions.sendLocation(lat, lon);
  }));
  $("map-panel").hidden = false;
}

function closeMap() {
  $("map-panel").hidden = true;
}

// --- wiring -------------------------------------------------------------------------------------

function choose(key) {
  state.active = key;
  state.unread.delete(key);
  localStorage.setItem("sandbox.persona", key);
  stickToBottom = true;
  $("toast").hidden = true; // it was about the chat being left
  renderPersonas();
  renderChat();
}

async function loadTexts() {
  state.texts = await (await fetch(`/api/texts?lang=${state.lang}`)).json();
  renderTexts();
}

async function start() {
  const [personas, district] = await Promise.all([
    fetch("/api/personas").then((r) => r.json()),
    fetch("/api/district").then((r) => r.json()),
  ]);
  state.personas = personas;
  state.district = district;
  if (!personas.some((p) => p.key === state.active)) state.active = personas[0].key;
  await loadTexts();
  renderPersonas();
  renderChat();

  $("chat").addEventListener("scroll", () => {
    const pane = $("chat");
    stickToBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 60;
  });
  $("lang").addEventListener("click", async () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("sandbox.lang", state.lang);
    await loadTexts();
    renderPersonas();
    renderChat();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    actions.sendText(text);
  });
  $("photo-button").addEventListener("click", () => $("photo-input").click());
  $("photo-input").addEventListener("change", () => {
    const file = $("photo-input").files[0];
    if (!file) return;
    // Whatever is typed goes with the photo as its caption, as in Telegram.
    const caption = $("text").value.trim();
    $("text").value = "";
    $("photo-input").value = "";
    actions.sendPhoto(file, caption);
  });
  $("location-button").addEventListener("click", () => {
    state.pendingLocation = null;
    openMap();
  });
  $("keyboard-button").addEventListener("click", () => {
    const open = !$("keyboard").hidden;
    state.keyboardOpen.set(state.active, !open);
    $("keyboard").hidden = open;
  });
  $("map-close").addEventListener("click", closeMap);
  $("map-panel").addEventListener("click", (event) => {
    if (event.target === $("map-panel")) closeMap();
  });
  $("alert-ok").addEventListener("click", () => { $("alert").hidden = true; });
  connect();
}

start();
