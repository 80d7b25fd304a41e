// The REST API from the page: JSON in and out, the API key (if any) as a Bearer header.
// The key lives in sessionStorage only: it is never put in a URL, so never in an access log.

const keyName = 'jobpool.apiKey';

export const apiKey = {
  get: () => sessionStorage.getItem(keyName),
  set: (key) => sessionStorage.setItem(keyName, key),
  clear: () => sessionStorage.removeItem(keyName),
};

export class APIError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function authHeaders() {
  const key = apiKey.get();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** fetch() with JSON; throws APIError (with the problem+json body) on a non-2xx answer. */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = new APIError(response.status, data);
    if (response.status === 401) window.dispatchEvent(new CustomEvent('jobpool:unauthorized', { detail: error }));
    throw error;
  }
  return data;
}

export const jobPath = (id) => `/v1/jobs/${encodeURIComponent(id)}`;
