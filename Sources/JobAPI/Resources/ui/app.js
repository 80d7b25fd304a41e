// The dashboard's shell: hash routes, the API key prompt, and the one live event stream
// that every page listens to.

import { api, apiKey } from './api.js';
import { h, fill, problemBox } from './dom.js';
import { EventStream } from './sse.js';
import { countEvent } from './chart.js';
import { overviewPage } from './overview.js';
import { jobsPage } from './jobs.js';
import { jobPage } from './job.js';
import { submitPage } from './submit.js';

const main = document.getElementById('main');
const live = document.getElementById('live');
const keyButton = document.getElementById('key-button');
export const events = new EventStream();
let leave = null; // the open page's clean-up
events.subscribe(countEvent); // the chart counts on every page

const liveText = { open: 'live', closed: 'reconnecting…', error: 'offline, retrying…', unauthorized: 'needs an API key' };
events.onState((state) => { live.textContent = liveText[state] || state; });

/** The pages, by the first part of the hash route. */
function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts.length === 0) return { page: overviewPage, nav: '#/', params };
  if (parts[0] === 'jobs' && parts.length === 1) return { page: jobsPage, nav: '#/jobs', params };
  if (parts[0] === 'jobs' && parts.length === 2) return { page: jobPage, nav: '#/jobs', params, id: parts[1] };
  if (parts[0] === 'submit') return { page: submitPage, nav: '#/submit', params };
  return { page: notFoundPage, nav: null, params };
}

function notFoundPage(root) {
  fill(root, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the overview')));
}

async function show() {
  if (leave) { try { leave(); } catch { /* the old page is gone anyway */ } leave = null; }
  const target = route();
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === target.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  fill(main, h('p', {}, 'Loading…'));
  try {
    leave = await target.page(main, { events, params: target.params, id: target.id }) || null;
  } catch (error) {
    if (error.status === 401) return; // the key prompt takes over
    fill(main, h('h1', {}, 'Something went wrong'), problemBox(error));
  }
}

/** Asks for the API key; `error` is what the server said about the last one. */
function askForKey(error) {
  // The page's request and the stream may both be refused: the first prompt stays.
  if (document.getElementById('api-key') && !apiKey.get()) return;
  if (leave) { try { leave(); } catch { /* ignore */ } leave = null; }
  events.stop();
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', required: true, class: 'wide' });
  const form = h('form', {
    class: 'key-form',
    onsubmit: (event) => {
      event.preventDefault();
      apiKey.set(input.value.trim());
      keyButton.hidden = false;
      events.restart();
      show();
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'api-key' }, 'API key'), input),
  h('p', { class: 'muted' }, 'Kept in this tab only (sessionStorage) and sent as a Bearer header; never put in a URL.'),
  h('button', { type: 'submit' }, 'Use this key'));
  const hadKey = Boolean(apiKey.get());
  fill(main, h('h1', {}, 'This server needs an API key'),
    hadKey && error ? h('div', { class: 'error', role: 'alert' }, h('strong', {}, 'Key refused'), ': ', error.problem ? error.problem.detail : error.message) : null,
    form);
  if (hadKey) apiKey.clear();
  input.focus();
}

window.addEventListener('jobpool:unauthorized', (event) => askForKey(event.detail));
events.onState((state) => { if (state === 'unauthorized') askForKey({ message: 'The API key is not valid.' }); });
keyButton.addEventListener('click', () => { apiKey.clear(); askForKey(null); });
window.addEventListener('hashchange', () => { show(); main.focus(); });

async function boot() {
  if (apiKey.get()) keyButton.hidden = false;
  try {
    await api('/v1/stats');
  } catch (error) {
    if (error.status === 401) return; // askForKey has run
  }
  events.start();
  show();
}

boot();
