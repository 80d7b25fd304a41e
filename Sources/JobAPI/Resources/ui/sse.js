// GET /v1/events read with fetch() and a streamed Server-Sent Events parser: unlike
// EventSource, fetch can send the Authorization header, and this code sends Last-Event-ID
// itself when it reconnects.

import { authHeaders } from './api.js';

export class EventStream {
  constructor(path = '/v1/events') {
    this.path = path;
    this.lastEventID = null;
    this.retry = 2000;
    this.listeners = new Set();
    this.stateListeners = new Set();
    this.controller = null;
    this.stopped = true;
  }

  /** listener({type, id, data}) for every event, including "ready" and "reset". */
  subscribe(listener) { this.listeners.add(listener); return () => this.listeners.delete(listener); }
  onState(listener) { this.stateListeners.add(listener); }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  /** Starts afresh (a new key, say): no Last-Event-ID. */
  restart() {
    this.stop();
    this.lastEventID = null;
    setTimeout(() => this.start(), 0);
  }

  setState(state, detail) { for (const listener of this.stateListeners) listener(state, detail); }

  async loop() {
    while (!this.stopped) {
      this.controller = new AbortController();
      try {
        const headers = { Accept: 'text/event-stream', ...authHeaders() };
        if (this.lastEventID) headers['Last-Event-ID'] = this.lastEventID;
        const response = await fetch(this.path, { headers, signal: this.controller.signal, cache: 'no-store' });
        if (response.status === 401) { this.setState('unauthorized'); this.stopped = true; return; }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        this.setState('open');
        await this.read(response.body);
        this.setState('closed');
      } catch (error) {
        if (this.stopped) return;
        this.setState('error', error);
      }
      if (this.stopped) return;
      await new Promise((resolve) => setTimeout(resolve, this.retry));
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: 'message', data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
        if (line === '') {
          if (event.data.length) this.dispatch(event);
          event = { type: 'message', data: [], id: null };
          continue;
        }
        if (line.startsWith(':')) continue; // a comment: heartbeat
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') event.type = text;
        else if (field === 'data') event.data.push(text);
        else if (field === 'id' && !text.includes('\0')) { event.id = text; this.lastEventID = text; }
        else if (field === 'retry' && /^\d+$/.test(text)) this.retry = Number(text);
      }
    }
  }

  dispatch(event) {
    let data = null;
    try { data = JSON.parse(event.data.join('\n')); } catch { data = event.data.join('\n'); }
    const message = { type: event.type, id: event.id || this.lastEventID, data };
    for (const listener of this.listeners) {
      try { listener(message); } catch (error) { console.warn('event listener failed', error); }
    }
  }
}
