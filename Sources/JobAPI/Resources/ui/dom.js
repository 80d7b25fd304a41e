// Builds DOM nodes. Every value from a job reaches the page as a text node (textContent),
// never as HTML, so job input such as "<img onerror=...>" is shown, not run.

/** h('p', {class: 'x'}, 'text', child) -> an element; attrs starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything in `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** An SVG element (for the chart), also text-only. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  append(node, children);
  return node;
}

export function statusBadge(status) {
  return h('span', { class: `status status-${String(status).replace(/[^a-z]/g, '')}` }, status);
}

export function time(value) {
  if (!value) return '—';
  const date = new Date(value);
  return h('time', { datetime: value, title: value }, date.toLocaleString());
}

export function json(value) {
  return value === null || value === undefined ? '—' : JSON.stringify(value, null, 2);
}

/** A message box for a failure, from a problem+json body when there is one. */
export function problemBox(error) {
  const problem = error && error.problem;
  const lines = [h('strong', {}, problem ? problem.title : 'Request failed'), ': ', problem ? problem.detail : String(error.message || error)];
  const fields = problem && Array.isArray(problem.errors) ? problem.errors : [];
  return h('div', { class: 'error', role: 'alert' }, lines,
    fields.length ? h('ul', {}, fields.map((field) => h('li', {}, `${field.pointer || field.parameter || field.header || ''} ${field.detail || ''}`))) : null);
}

/** Runs `work` at most once per `ms`, the last call winning. */
export function throttle(work, ms) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) { again = true; return; }
    work();
    timer = setTimeout(function tick() {
      timer = null;
      if (again) { again = false; work(); timer = setTimeout(tick, ms); }
    }, ms);
  };
}
