// Job detail: input, result and error; attempts and a timeline; webhook deliveries with a
// redeliver button; a cancel button while the job is live. Updates from the event stream.

import { api, jobPath } from './api.js';
import { h, fill, statusBadge, time, json, problemBox } from './dom.js';

const live = new Set(['scheduled', 'queued', 'running']);

export async function jobPage(root, { events, id }) {
  const heading = h('h1', {}, 'Job ', h('span', { class: 'id' }, id));
  const actions = h('div', { class: 'controls' });
  const message = h('div', { 'aria-live': 'polite' });
  const facts = h('div');
  const data = h('div');
  const timelineList = h('ol', { class: 'timeline' });
  const deliveries = h('div');
  fill(root, heading, actions, message, facts, data,
    h('section', { 'aria-labelledby': 'timeline' }, h('h2', { id: 'timeline' }, 'Timeline'),
      h('p', { class: 'muted' }, 'From the job\'s own times; events after the page opened are added as they arrive.'), timelineList),
    h('section', { 'aria-labelledby': 'deliveries' }, h('h2', { id: 'deliveries' }, 'Webhook deliveries'), deliveries));

  const seen = []; // events of this job since the page opened
  let job = null;

  function timeline() {
    const entries = [['created', job.created_at]];
    if (job.started_at) entries.push([`attempt ${job.attempt} started`, job.started_at]);
    if (job.next_attempt_at) entries.push([`attempt ${job.attempt} due`, job.next_attempt_at]);
    if (job.finished_at) entries.push([job.status, job.finished_at]);
    const fromTimes = entries.map(([text, at]) => h('li', {}, time(at), ' — ', text));
    const fromEvents = seen.map((event) => h('li', {}, time(event.data.at), ' — ', `${event.type} (attempt ${event.data.job.attempt})`,
      event.data.job.error ? `: ${event.data.job.error.code} — ${event.data.job.error.message}` : ''));
    fill(timelineList, fromTimes, fromEvents.length ? h('li', { class: 'muted' }, 'live events:') : null, fromEvents);
  }

  async function cancel() {
    fill(message);
    try {
      const result = await api(`${jobPath(id)}/cancel`, { method: 'POST' });
      fill(message, h('div', { class: 'notice', role: 'status' }, `Cancel sent; the job is ${result.status}.`));
      await load();
    } catch (error) {
      fill(message, problemBox(error));
    }
  }

  async function redeliver() {
    fill(message);
    try {
      await api(`${jobPath(id)}/deliveries/redeliver`, { method: 'POST' });
      fill(message, h('div', { class: 'notice', role: 'status' }, 'Redelivery queued.'));
      await loadDeliveries();
    } catch (error) {
      fill(message, problemBox(error));
    }
  }

  async function loadDeliveries() {
    if (!job.webhook) { fill(deliveries, h('p', {}, 'This job has no webhook.')); return; }
    let report = null;
    try {
      report = await api(`${jobPath(id)}/deliveries`);
    } catch (error) {
      fill(deliveries, problemBox(error));
      return;
    }
    const attempts = report.deliveries || [];
    fill(deliveries,
      h('dl', { class: 'facts' }, h('dt', {}, 'URL'), h('dd', { class: 'id' }, job.webhook.url), h('dt', {}, 'state'), h('dd', {}, report.state || job.webhook.state)),
      attempts.length ? h('div', { class: 'scroll' }, h('table', {},
        h('caption', { class: 'muted' }, 'Delivery attempts'),
        h('thead', {}, h('tr', {}, ['#', 'started', 'HTTP status', 'error', 'next attempt'].map((name) => h('th', { scope: 'col' }, name)))),
        h('tbody', {}, attempts.map((attempt) => h('tr', {}, h('td', {}, attempt.attempt), h('td', {}, time(attempt.started_at)),
          h('td', {}, attempt.status ?? '—'), h('td', {}, attempt.error ? `${attempt.error.code}: ${attempt.error.message}` : '—'),
          h('td', {}, time(attempt.next_attempt_at)))))))
        : h('p', {}, live.has(job.status) ? 'The webhook is sent when the job finishes.' : 'No attempts yet.'),
      live.has(job.status) ? null : h('button', { type: 'button', class: 'secondary', onclick: redeliver }, 'Redeliver webhook'));
  }

  async function load() {
    job = await api(jobPath(id));
    fill(actions, live.has(job.status)
      ? h('button', { type: 'button', id: 'cancel-job', class: 'danger', onclick: cancel }, job.cancel_requested ? 'Cancel requested…' : 'Cancel job')
      : null);
    fill(facts, h('dl', { class: 'facts' },
      h('dt', {}, 'state'), h('dd', { id: 'job-status' }, statusBadge(job.status)),
      h('dt', {}, 'kind'), h('dd', {}, job.kind),
      h('dt', {}, 'attempt'), h('dd', {}, `${job.attempt} of ${job.max_attempts}`),
      h('dt', {}, 'priority'), h('dd', {}, job.priority),
      h('dt', {}, 'created'), h('dd', {}, time(job.created_at)),
      h('dt', {}, 'started'), h('dd', {}, time(job.started_at)),
      h('dt', {}, 'finished'), h('dd', {}, time(job.finished_at))));
    fill(data,
      h('h2', {}, 'Input'), h('pre', { id: 'job-input' }, json(job.input)),
      h('h2', {}, 'Result'), h('pre', { id: 'job-result' }, json(job.result)),
      job.error ? [h('h2', {}, 'Error'), h('pre', { id: 'job-error' }, json(job.error))] : null,
      job.last_error ? [h('h2', {}, 'Last failed attempt'), h('pre', {}, json(job.last_error))] : null);
    timeline();
    await loadDeliveries();
  }

  try {
    await load();
  } catch (error) {
    if (error.status === 404) { fill(root, h('h1', {}, 'Job not found'), problemBox(error), h('p', {}, h('a', { href: '#/jobs' }, 'Back to the jobs'))); return null; }
    throw error;
  }
  const unsubscribe = events.subscribe((event) => {
    if (event.type === 'reset') { load().catch(() => {}); return; }
    if (!event.data || !event.data.job || event.data.job.id !== job.id) return;
    seen.push(event);
    load().catch((error) => fill(message, problemBox(error)));
  });
  return unsubscribe;
}
