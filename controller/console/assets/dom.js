// Building the page from data without innerHTML: every text is a text node,
// so nothing an operator or a terminal sends can become markup.

const props = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'indeterminate', 'multiple', 'required']);

// h makes an element: h('a', {href: '#/x', class: 'b', onclick: fn}, 'text', child, [more]).
export function h(tag, attrs, ...kids) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style') el.style.cssText = v; // through CSSOM: the CSP refuses style attributes
    else if (props.has(k) && !svg) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, kids);
  return el;
}

// s is h for SVG elements.
export const s = (tag, attrs, ...kids) => h('svg:' + tag, attrs, ...kids);

function append(el, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

// mount replaces an element's children.
export function mount(el, ...kids) {
  el.replaceChildren();
  append(el, kids);
  return el;
}

// coalesce runs fn once, ms after the first of a burst of calls: a steady
// stream of events still updates the page every ms, never more often.
export function coalesce(fn, ms) {
  let timer = 0;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = 0;
      fn();
    }, ms);
  };
}

// download offers text as a file made in the browser.
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = h('a', {href: url, download: name, class: 'hidden'});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// csv quotes rows for a spreadsheet; the BOM makes Excel read UTF-8.
export function csv(rows) {
  const q = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return '\uFEFF' + rows.map((r) => r.map(q).join(',')).join('\r\n') + '\r\n';
}
