// Overview: counts by state and kind, queue and workers, webhooks, and the live chart.

import { api } from './api.js';
import { h, fill, throttle } from './dom.js';
import { chart, series } from './chart.js';

const states = ['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];

function card(label, value, id) {
  return h('div', { class: 'card' }, h('span', { class: 'label', id: `${id}-label` }, label),
    h('span', { class: 'value', id }, value));
}

export async function overviewPage(root, { events }) {
  const cards = h('div', { class: 'cards' });
  const pool = h('div', { class: 'cards' });
  const hooks = h('div', { class: 'cards' });
  const kinds = h('div', { class: 'scroll' });
  const chartBox = h('div');
  fill(root,
    h('h1', {}, 'Overview'),
    h('section', { 'aria-labelledby': 'by-state' }, h('h2', { id: 'by-state' }, 'Jobs by state'), cards),
    h('section', { 'aria-labelledby': 'pool' }, h('h2', { id: 'pool' }, 'Queue and workers'), pool),
    h('section', { 'aria-labelledby': 'throughput' }, h('h2', { id: 'throughput' }, 'Finished per second and failure rate, last 15 minutes'),
      h('p', { class: 'muted' }, 'Counted in this page from the live event stream, so the chart starts empty when the dashboard opens.'),
      h('div', { class: 'legend' }, h('span', { class: 'done' }, 'finished per second'), h('span', { class: 'fail' }, 'share failed (right axis)')),
      chartBox),
    h('section', { 'aria-labelledby': 'webhooks' }, h('h2', { id: 'webhooks' }, 'Webhook deliveries'), hooks),
    h('section', { 'aria-labelledby': 'by-kind' }, h('h2', { id: 'by-kind' }, 'Jobs by kind'), kinds));

  async function refresh() {
    const stats = await api('/v1/stats');
    fill(cards, states.map((state) => card(state, stats.by_state[state] ?? 0, `count-${state}`)));
    fill(pool,
      card('queue depth', stats.queue_depth, 'queue-depth'),
      card('workers busy', `${stats.workers_busy} / ${stats.workers}`, 'workers-busy'),
      card('oldest queued (s)', stats.oldest_queued_age_seconds === null ? '—' : stats.oldest_queued_age_seconds.toFixed(1), 'oldest-queued'));
    const webhooks = stats.webhooks || {};
    fill(hooks,
      card('pending', webhooks.pending ?? 0, 'webhooks-pending'),
      card('failed', webhooks.failed ?? 0, 'webhooks-failed'),
      card('delivered', webhooks.delivered ?? 0, 'webhooks-delivered'));
    const names = Object.keys(stats.by_kind).sort();
    fill(kinds, h('table', {},
      h('caption', { class: 'muted' }, 'Jobs of each kind in each state'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'kind'), states.map((state) => h('th', { scope: 'col', class: 'num' }, state)))),
      h('tbody', {}, names.map((name) => h('tr', {}, h('th', { scope: 'row' }, name),
        states.map((state) => h('td', { class: 'num' }, stats.by_kind[name][state] ?? 0)))))));
  }
  const drawChart = () => fill(chartBox, chart(series()));

  await refresh();
  drawChart();
  const refreshSoon = throttle(() => refresh().catch(() => {}), 300);
  const unsubscribe = events.subscribe((event) => {
    if (event.type === 'ready') return;
    refreshSoon();
  });
  const timer = setInterval(() => { drawChart(); refresh().catch(() => {}); }, 5000);
  return () => { unsubscribe(); clearInterval(timer); };
}
