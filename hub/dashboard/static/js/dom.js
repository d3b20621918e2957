// Tiny DOM helpers: elements are built with textContent only (no innerHTML with data).

export function h(tag, attrs = {}, ...children) {
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const parts = tag.match(/[.#]?[^.#]+/g) || ["div"];
  const el = document.createElement(parts[0].match(/^[.#]/) ? "div" : parts[0]);
  const classes = parts.filter((p) => p[0] === ".").map((p) => p.slice(1));
  const id = parts.find((p) => p[0] === "#");
  if (id) el.id = id.slice(1);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className += (el.className ? " " : "") + value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

let toastTimer = 0;

/** A short message at the bottom of the screen (errors from the hub or the API, confirmations). */
export function toast(message, kind = "info") {
  const box = $("#toast");
  if (!box) return;
  clear(box, message);
  box.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.className = "toast"; }, kind === "error" ? 6000 : 3000);
}
