// Jobs finished per second and the failure rate over the last 15 minutes, counted in the page
// from the live event stream: the chart starts empty when the dashboard opens.

import { svg } from './dom.js';

const bucketSeconds = 10;
const bucketCount = 90; // 15 minutes
const buckets = []; // {start, finished, failed}, oldest first

function bucketFor(now) {
  const start = Math.floor(now / 1000 / bucketSeconds) * bucketSeconds;
  let last = buckets[buckets.length - 1];
  if (!last || last.start !== start) {
    last = { start, finished: 0, failed: 0 };
    buckets.push(last);
    while (buckets.length && buckets[0].start <= start - bucketSeconds * bucketCount) buckets.shift();
  }
  return last;
}

/** Counts one event from the stream. */
export function countEvent(event) {
  if (event.type !== 'job.succeeded' && event.type !== 'job.failed' && event.type !== 'job.cancelled') return;
  const bucket = bucketFor(Date.now());
  bucket.finished += 1;
  if (event.type === 'job.failed') bucket.failed += 1;
}

/** The series for the last 15 minutes, one point per bucket, zeros where nothing happened. */
export function series(now = Date.now()) {
  bucketFor(now);
  const newest = buckets[buckets.length - 1].start;
  const byStart = new Map(buckets.map((bucket) => [bucket.start, bucket]));
  const points = [];
  for (let index = bucketCount - 1; index >= 0; index -= 1) {
    const bucket = byStart.get(newest - index * bucketSeconds) || { finished: 0, failed: 0 };
    points.push({ perSecond: bucket.finished / bucketSeconds, failureRate: bucket.finished ? bucket.failed / bucket.finished : 0 });
  }
  return points;
}

/** An inline SVG line chart of `points` (finished per second, solid; failure %, dashed). */
export function chart(points) {
  const width = 1000;
  const height = 240;
  const pad = { left: 40, right: 40, top: 12, bottom: 22 };
  const peak = Math.max(1, ...points.map((point) => point.perSecond));
  const x = (index) => pad.left + (index * (width - pad.left - pad.right)) / (points.length - 1);
  const y = (fraction) => pad.top + (1 - fraction) * (height - pad.top - pad.bottom);
  const line = (value) => points.map((point, index) => `${x(index).toFixed(1)},${y(value(point)).toFixed(1)}`).join(' ');
  const last = points.slice(-6);
  const recentRate = last.reduce((sum, point) => sum + point.perSecond, 0) / last.length;
  const label = `Jobs finished per second over the last 15 minutes: ${recentRate.toFixed(2)} per second in the last minute, peak ${peak.toFixed(2)}.`;
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
    svg('line', { class: 'axis', x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0) }),
    svg('line', { class: 'axis', x1: pad.left, y1: y(1), x2: width - pad.right, y2: y(1) }),
    svg('text', { x: 4, y: y(1) + 4 }, peak.toFixed(1)),
    svg('text', { x: 4, y: y(0) + 4 }, '0'),
    svg('text', { x: width - pad.right + 4, y: y(1) + 4 }, '100%'),
    svg('text', { x: width - pad.right + 4, y: y(0) + 4 }, '0%'),
    svg('text', { x: pad.left, y: height - 4 }, '−15 min'),
    svg('text', { x: width - pad.right - 24, y: height - 4 }, 'now'),
    svg('polyline', { class: 'done', points: line((point) => point.perSecond / peak) }),
    svg('polyline', { class: 'fail', points: line((point) => point.failureRate) }));
}
