// Messages as DOM nodes. Text arrives as plain text + Telegram entities (offsets in UTF-16
// code units, which is how JavaScript indexes strings); nothing is ever parsed as HTML.

import { drawPlace } from "./map.js";

const SAFE_URL = /^(https?:|tg:)/i;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function link(url, text) {
  if (!SAFE_URL.test(url)) return el("span", "", text);
  const a = el("a", "", text);
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

// The element for one entity; `content` is its plain text (for url-like entities).
function entityNode(entity, content, actions) {
  switch (entity.type) {
    case "bold": return el("strong");
    case "italic": return el("em");
    case "underline": return el("u");
    case "strikethrough": return el("s");
    case "code": return el("code");
    case "pre": return el("pre");
    case "blockquote":
    case "expandable_blockquote": return el("blockquote");
    case "text_link": return link(entity.url || "", "");
    case "url": return link(content, "");
    case "spoiler": {
      const node = el("span", "spoiler");
      node.addEventListener("click", () => node.classList.add("shown"));
      return node;
    }
    case "bot_command": {
      // As in Telegram, tapping a command in the bot's text sends it.
      const node = el("span", "command");
      node.addEventListener("click", () => actions.sendText(content));
      return node;
    }
    default: return el("span", entity.type.replace(/[^a-z_]/g, ""));
  }
}

// Telegram's clients make "/command" in a bot's text tappable even without an entity.
const COMMAND = /(^|[\s(（])(\/[A-Za-z0-9_]{1,32})(?![\w/])/g;

function plain(text, actions, linkify) {
  if (!linkify) return document.createTextNode(text);
  const out = document.createDocumentFragment();
  let pos = 0;
  for (const match of text.matchAll(COMMAND)) {
    const at = match.index + match[1].length;
    out.append(text.slice(pos, at));
    const command = el("span", "command", match[2]);
    command.addEventListener("click", () => actions.sendText(match[2]));
    out.append(command);
    pos = at + match[2].length;
  }
  out.append(text.slice(pos));
  return out;
}

function build(text, start, end, entities, actions, linkify = true) {
  const out = document.createDocumentFragment();
  let pos = start;
  let i = 0;
  while (i < entities.length) {
    const entity = entities[i];
    const from = Math.max(entity.offset, pos);
    const to = Math.min(entity.offset + entity.length, end);
    // Entities inside this one are rendered within it, clamped to it.
    let j = i + 1;
    while (j < entities.length && entities[j].offset < to) j += 1;
    if (from < to) {
      out.append(plain(text.slice(pos, from), actions, linkify));
      const node = entityNode(entity, text.slice(from, to), actions);
      // Inside code, links and commands, the text is shown as it is.
      const inner = linkify && !["code", "pre", "bot_command", "text_link", "url"].includes(entity.type);
      node.append(build(text, from, to, entities.slice(i + 1, j), actions, inner));
      out.append(node);
      pos = to;
    }
    i = j;
  }
  out.append(plain(text.slice(pos, end), actions, linkify));
  return out;
}

export function renderText(text, entities, actions) {
  const sorted = [...(entities || [])].sort((a, b) => a.offset - b.offset || b.length - a.length);
  return build(text, 0, text.length, sorted, actions);
}

function time(seconds) {
  const d = new Date(seconds * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function photoNode(photo) {
  const a = link(`/api/files/${encodeURIComponent(photo.full_id)}`, "");
  const img = el("img");
  img.src = `/api/files/${encodeURIComponent(photo.file_id)}`;
  img.alt = "photo";
  if (photo.width && photo.height) {
    // Reserve the space before the bytes arrive, so the chat does not jump.
    img.width = photo.width;
    img.height = photo.height;
  }
  a.append(img);
  return a;
}

function inlineKeyboard(message, actions, texts) {
  const box = el("div", "inline");
  for (const row of message.inline_keyboard) {
    const line = el("div", "row");
    for (const button of row) {
      let node;
      if (button.callback_data !== undefined) {
        node = el("button", "", button.text);
        node.type = "button";
        node.dataset.data = button.callback_data;
        node.addEventListener("click", () => actions.pressInline(message.id, button.callback_data));
      } else if (button.url) {
        node = link(button.url, button.text);
      } else {
        node = el("button", "", button.text);
        node.disabled = true;
        node.title = texts["sandbox.unsupported_button"];
      }
      line.append(node);
    }
    box.append(line);
  }
  return box;
}

// One bubble for a message, or for an album (messages sharing a media group).
export function renderGroup(group, ctx) {
  const { actions, texts, district } = ctx;
  const first = group[0];
  const wrap = el("div", `msg ${first.from}`);
  wrap.dataset.id = String(first.id);
  wrap.dataset.from = first.from;
  const bubble = el("div", "bubble");
  const photos = group.filter((m) => m.photo);
  if (photos.length) {
    const grid = el("div", "photos");
    for (const m of photos) grid.append(photoNode(m.photo));
    bubble.append(grid);
  }
  for (const m of group) {
    if (m.location) {
      const place = el("div", "place");
      place.append(drawPlace(district, m.location));
      bubble.append(place);
      if (!m.venue) bubble.append(el("div", "coords", `📍 ${m.location.lat.toFixed(5)}, ${m.location.lon.toFixed(5)}`));
    }
    if (m.venue) {
      const venue = el("div", "venue");
      venue.append(el("strong", "", m.venue.title), m.venue.address);
      bubble.append(venue);
    }
    if (m.document) {
      const doc = el("div", "doc");
      doc.append(link(`/api/files/${encodeURIComponent(m.document.file_id)}`, `📄 ${m.document.file_name}`));
      bubble.append(doc);
    }
    if (m.contact) bubble.append(el("div", "contact", `📞 ${m.contact}`));
    if (m.text) {
      const text = el("div", "text");
      text.append(renderText(m.text, m.entities, actions));
      bubble.append(text);
    }
  }
  const last = group[group.length - 1];
  const edited = group.some((m) => m.edited) ? `${texts["sandbox.edited"]} ` : "";
  bubble.append(el("div", "meta", `${edited}${time(last.date)}`));
  wrap.append(bubble);
  for (const m of group) if (m.inline_keyboard) wrap.append(inlineKeyboard(m, actions, texts));
  return wrap;
}

// Messages in id order, consecutive members of one album grouped.
export function groups(messages) {
  const out = [];
  for (const m of messages) {
    const prev = out[out.length - 1];
    if (prev && m.album && prev[0].album === m.album && prev[0].from === m.from) prev.push(m);
    else out.push([m]);
  }
  return out;
}
