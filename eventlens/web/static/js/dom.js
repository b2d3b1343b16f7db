// Tiny DOM helpers: build elements without innerHTML (so data never becomes markup).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : String(c));
  return el;
}

let nextId = 0;
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A select whose options are [value, label] pairs (or plain strings). */
export function select(attrs, options, selected) {
  const el = h("select", attrs);
  for (const o of options) {
    const [value, label] = Array.isArray(o) ? o : [o, o];
    const opt = h("option", { value }, label);
    if (String(value) === String(selected)) opt.selected = true;
    el.append(opt);
  }
  return el;
}

/** A labelled form control: <div><label for=id>text</label><control id=id></div> (a label
 * that wraps a select would put the selected option into the control's accessible name). */
export function field(text, control, cls) {
  if (!control.id) control.id = uid("f");
  return h("div", { class: cls ? `field ${cls}` : "field" }, h("label", { for: control.id }, text), control);
}

const NUMBER = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
export function fmtNumber(n) {
  return n === null || n === undefined ? "–" : NUMBER.format(n);
}

export function fmtPercent(x) {
  return `${(x * 100).toFixed(1)}%`;
}

/** Seconds as "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"; null as "–". */
export function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}
