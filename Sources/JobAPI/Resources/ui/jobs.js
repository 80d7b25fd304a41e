// Jobs: the list with state and kind filters and cursor paging, look-up by ID, and live
// updates with a pause control and a choice of refresh.

import { api } from './api.js';
import { h, fill, statusBadge, time, problemBox, throttle } from './dom.js';

const states = ['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];
let refreshChoice = 'live'; // kept while the tab is open
let paused = false;

function select(id, label, options, value, onchange) {
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('select', { id, onchange }, options.map(([optionValue, text]) => h('option', { value: optionValue, selected: optionValue === value }, text))));
}

export async function jobsPage(root, { events, params }) {
  const stats = await api('/v1/stats');
  const kinds = Object.keys(stats.by_kind).sort();
  const status = params.get('status') || '';
  const kind = params.get('kind') || '';
  const cursors = [null]; // the cursor of each page shown so far; the last is the current page's
  const go = (next) => {
    const query = new URLSearchParams();
    if (next.status) query.set('status', next.status);
    if (next.kind) query.set('kind', next.kind);
    location.hash = `#/jobs${query.toString() ? `?${query}` : ''}`;
  };

  const lookupInput = h('input', { id: 'lookup-id', name: 'id', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'job ID' });
  const lookupMessage = h('div', { 'aria-live': 'polite' });
  const lookup = h('form', {
    class: 'inline', role: 'search', 'aria-label': 'Look up a job',
    onsubmit: async (event) => {
      event.preventDefault();
      const id = lookupInput.value.trim();
      try {
        await api(`/v1/jobs/${encodeURIComponent(id)}`);
        location.hash = `#/jobs/${encodeURIComponent(id)}`;
      } catch (error) {
        fill(lookupMessage, problemBox(error));
      }
    },
  }, h('div', { class: 'field' }, h('label', { for: 'lookup-id' }, 'Job ID'), lookupInput), h('button', { type: 'submit' }, 'Look up'));

  const pauseButton = h('button', { type: 'button', class: 'secondary', 'aria-pressed': String(paused) }, paused ? 'Resume updates' : 'Pause updates');
  const updated = h('span', { class: 'muted', role: 'status' });
  const table = h('div', { class: 'scroll' });
  const pager = h('div', { class: 'controls' });

  fill(root,
    h('h1', {}, 'Jobs'),
    lookup, lookupMessage,
    h('div', { class: 'controls', role: 'group', 'aria-label': 'Filters and updates' },
      select('filter-status', 'State', [['', 'any state'], ...states.map((state) => [state, state])], status, (event) => go({ status: event.target.value, kind })),
      select('filter-kind', 'Kind', [['', 'any kind'], ...kinds.map((name) => [name, name])], kind, (event) => go({ status, kind: event.target.value })),
      select('refresh', 'Refresh', [['live', 'live, as jobs change'], ['5', 'every 5 seconds'], ['30', 'every 30 seconds'], ['off', 'only by hand']], refreshChoice,
        (event) => { refreshChoice = event.target.value; schedule(); }),
      pauseButton,
      h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh now')),
    updated, table, pager);

  async function load() {
    const query = new URLSearchParams({ limit: '25' });
    if (status) query.set('status', status);
    if (kind) query.set('kind', kind);
    const cursor = cursors[cursors.length - 1];
    if (cursor) query.set('cursor', cursor);
    let page;
    try {
      page = await api(`/v1/jobs?${query}`);
    } catch (error) {
      fill(table, problemBox(error));
      return;
    }
    fill(table, h('table', {},
      h('caption', { class: 'muted' }, `Jobs, newest first${status ? `, ${status}` : ''}${kind ? `, of kind ${kind}` : ''}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'ID'), h('th', { scope: 'col' }, 'kind'), h('th', { scope: 'col' }, 'state'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'created'), h('th', { scope: 'col', class: 'hide-narrow' }, 'finished'))),
      h('tbody', {}, page.jobs.length ? page.jobs.map((job) => h('tr', { 'data-job-id': job.id },
        h('td', {}, h('a', { class: 'id', href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
        h('td', {}, job.kind), h('td', {}, statusBadge(job.status)),
        h('td', { class: 'hide-narrow' }, time(job.created_at)), h('td', { class: 'hide-narrow' }, time(job.finished_at))))
        : h('tr', {}, h('td', { colspan: 5 }, 'No jobs here yet.')))));
    fill(pager,
      cursors.length > 1 ? h('button', { type: 'button', class: 'secondary', onclick: () => { cursors.length = 1; load(); } }, 'First page') : null,
      page.next_cursor ? h('button', { type: 'button', class: 'secondary', onclick: () => { cursors.push(page.next_cursor); load(); } }, 'Next page') : null);
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}${paused ? ' (paused)' : ''}`;
  }

  let timer = null;
  const liveLoad = throttle(() => load(), 500);
  function schedule() {
    clearInterval(timer);
    timer = null;
    if (!paused && (refreshChoice === '5' || refreshChoice === '30')) timer = setInterval(load, Number(refreshChoice) * 1000);
  }
  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume updates' : 'Pause updates';
    pauseButton.setAttribute('aria-pressed', String(paused));
    schedule();
    if (!paused) load();
  });
  const unsubscribe = events.subscribe((event) => {
    if (paused || refreshChoice !== 'live' || event.type === 'ready') return;
    // Only the first page moves by itself; a later page stays put until asked.
    if (cursors.length === 1) liveLoad();
  });
  await load();
  schedule();
  return () => { unsubscribe(); clearInterval(timer); };
}
