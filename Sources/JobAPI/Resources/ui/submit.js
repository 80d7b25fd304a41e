// Submit: kind, input as JSON, an optional webhook. Opens the new job's page.

import { api } from './api.js';
import { h, fill, problemBox } from './dom.js';

const examples = {
  write_code: { name: 'alex' },
  fetch_url: { url: 'https://example.com/' },
};

export async function submitPage(root) {
  const stats = await api('/v1/stats');
  const kinds = Object.keys(stats.by_kind).sort();
  const kind = h('select', { id: 'submit-kind', name: 'kind' }, kinds.map((name) => h('option', { value: name }, name)));
  const input = h('textarea', { id: 'submit-input', name: 'input', spellcheck: 'false', 'aria-describedby': 'input-help' });
  const webhook = h('input', { id: 'submit-webhook', name: 'webhook', type: 'url', class: 'wide', placeholder: 'https://example.com/hook', 'aria-describedby': 'webhook-help' });
  const message = h('div', { 'aria-live': 'polite' });
  const example = () => { input.value = JSON.stringify(examples[kind.value] || {}, null, 2); };
  kind.addEventListener('change', example);
  example();

  const form = h('form', {
    onsubmit: async (event) => {
      event.preventDefault();
      fill(message);
      let parsed;
      try {
        parsed = JSON.parse(input.value);
      } catch (error) {
        fill(message, h('div', { class: 'error', role: 'alert' }, `The input is not valid JSON: ${error.message}`));
        input.focus();
        return;
      }
      const body = { kind: kind.value, input: parsed };
      if (webhook.value.trim()) body.webhook = { url: webhook.value.trim() };
      try {
        const job = await api('/v1/jobs', { method: 'POST', body });
        location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
      } catch (error) {
        fill(message, problemBox(error));
      }
    },
  },
  h('div', { class: 'field' }, h('label', { for: 'submit-kind' }, 'Kind'), kind),
  h('div', { class: 'field' }, h('label', { for: 'submit-input' }, 'Input (JSON)'), input,
    h('span', { id: 'input-help', class: 'muted' }, 'write_code takes {"name": ..., "min_seconds"?, "max_seconds"?}; fetch_url takes {"url": ...}.')),
  h('div', { class: 'field' }, h('label', { for: 'submit-webhook' }, 'Webhook URL (optional)'), webhook,
    h('span', { id: 'webhook-help', class: 'muted' }, 'Called once when the job finishes, signed with Standard Webhooks.')),
  h('p', {}, h('button', { type: 'submit', id: 'submit-button' }, 'Submit job')));
  fill(root, h('h1', {}, 'Submit a job'), form, message);
  return null;
}
