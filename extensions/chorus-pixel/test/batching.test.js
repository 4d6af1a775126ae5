import {test} from 'node:test';
import assert from 'node:assert/strict';

import {installClock, stubFetch} from '../test-support/clock.js';
import {ENDPOINT, pixelModule, startPixel, standardEvent} from '../test-support/pixel.js';

function pageViews(pixel, count) {
  const ids = [];
  for (let i = 0; i < count; i += 1) {
    const event = standardEvent('page_viewed', {}, {pathname: `/pages/${i}`});
    ids.push(event.id);
    pixel.emit('page_viewed', event);
  }
  return ids;
}

test('the agreed body is posted to <appUrl>/pixel/<shopKey> through sendBeacon', (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  const event = standardEvent('page_viewed', {}, {pathname: '/pages/about'});
  pixel.emit('page_viewed', event);
  clock.tick(2000);

  assert.equal(pixel.sent.length, 1);
  const [request] = pixel.sent;
  assert.equal(request.via, 'beacon');
  assert.equal(request.url, ENDPOINT);
  assert.deepEqual(JSON.parse(request.body), {
    events: [
      {
        id: event.id,
        name: 'page_viewed',
        timestamp: '2025-05-01T10:00:00.000Z',
        clientId: 'client-1',
        data: {url: '/pages/about'},
      },
    ],
  });
});

test('a trailing slash on appUrl does not double the slash', (t) => {
  const clock = installClock(t);
  const pixel = startPixel({settings: {shopKey: 'abc', appUrl: 'https://chorus.example.com/'}});
  pageViews(pixel, 1);
  clock.tick(2000);
  assert.equal(pixel.sent[0].url, 'https://chorus.example.com/pixel/abc');
});

test('queued events wait for 2 seconds after the first, then go together', (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  const first = pageViews(pixel, 1);
  clock.tick(1500);
  const second = pageViews(pixel, 2);
  clock.tick(499);
  assert.equal(pixel.sent.length, 0);
  clock.tick(1);
  assert.equal(pixel.sent.length, 1);
  assert.deepEqual(pixel.sent[0].events.map((event) => event.id), [...first, ...second]);

  // The next event starts a new 2-second wait.
  const third = pageViews(pixel, 1);
  clock.tick(1999);
  assert.equal(pixel.sent.length, 1);
  clock.tick(1);
  assert.equal(pixel.sent.length, 2);
  assert.deepEqual(pixel.sent[1].events.map((event) => event.id), third);
});

test('the tenth queued event sends the batch at once', (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  const ids = pageViews(pixel, 9);
  assert.equal(pixel.sent.length, 0);
  ids.push(...pageViews(pixel, 1));
  assert.equal(pixel.sent.length, 1);
  assert.deepEqual(pixel.sent[0].events.map((event) => event.id), ids);

  // Nothing is left for the timer.
  clock.tick(10000);
  assert.equal(pixel.sent.length, 1);
});

test('a burst goes out in requests of at most 20 events, each event once, in order', (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  const ids = pageViews(pixel, 45);
  clock.tick(2000);
  assert.ok(pixel.sent.length >= 3);
  for (const request of pixel.sent) {
    assert.ok(request.events.length >= 1 && request.events.length <= 20, `${request.events.length} events`);
  }
  assert.deepEqual(pixel.sent.flatMap((request) => request.events.map((event) => event.id)), ids);
});

test('a body stays under 64 KiB: the oldest events are dropped', (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  const ids = [];
  for (let i = 0; i < 10; i += 1) {
    const event = standardEvent('page_viewed');
    event.id = `${i}-${'x'.repeat(8000)}`;
    ids.push(event.id);
    pixel.emit('page_viewed', event);
  }
  assert.equal(pixel.sent.length, 1);
  const [request] = pixel.sent;
  assert.ok(Buffer.byteLength(request.body, 'utf8') < 64 * 1024);
  const sentIds = request.events.map((event) => event.id);
  assert.ok(sentIds.length >= 1 && sentIds.length < 10);
  assert.deepEqual(sentIds, ids.slice(ids.length - sentIds.length));
});

test('without sendBeacon it falls back to fetch with keepalive and text/plain', (t) => {
  const clock = installClock(t);
  const calls = [];
  stubFetch(t, async (url, options) => {
    calls.push({url, options});
    return new Response(null, {status: 204});
  });
  const pixel = startPixel({beacon: false});
  const ids = pageViews(pixel, 3);
  clock.tick(2000);

  assert.equal(calls.length, 1);
  const [{url, options}] = calls;
  assert.equal(url, ENDPOINT);
  assert.equal(options.method, 'POST');
  assert.equal(options.keepalive, true);
  assert.deepEqual(options.headers, {'Content-Type': 'text/plain'});
  assert.deepEqual(JSON.parse(options.body).events.map((event) => event.id), ids);
});

test('a failed send is dropped, never retried', async (t) => {
  const clock = installClock(t);
  const calls = [];
  stubFetch(t, async (url) => {
    calls.push(url);
    if (calls.length === 1) return new Response(null, {status: 429});
    throw new TypeError('network down');
  });
  const pixel = startPixel({beacon: false});
  pageViews(pixel, 10); // refused (429)
  pageViews(pixel, 10); // network error
  await new Promise((resolve) => setImmediate(resolve));
  clock.tick(60000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls.length, 2);
});

test('a beacon that is refused or rejects is not retried either', async (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  let calls = 0;
  pixel.api.browser.sendBeacon = async () => {
    calls += 1;
    if (calls === 1) return false;
    throw new Error('sandbox gone');
  };
  pageViews(pixel, 20);
  await new Promise((resolve) => setImmediate(resolve));
  clock.tick(60000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls, 2);
});

test('requestBodies: at most 20 events a request, every event once, in order', () => {
  const events = Array.from({length: 45}, (_, i) => ({id: `e${i}`, name: 'page_viewed', data: {url: '/'}}));
  const bodies = pixelModule.requestBodies(events).map((body) => JSON.parse(body).events);
  assert.deepEqual(bodies.map((batch) => batch.length), [20, 20, 5]);
  assert.deepEqual(bodies.flat(), events);
  assert.deepEqual(pixelModule.requestBodies([]), []);
});

test('requestBodies: a request loses its oldest events until it fits, or is not sent', () => {
  const huge = {id: 'x'.repeat(70000), name: 'page_viewed', data: {}};
  const small = {id: 'ok', name: 'page_viewed', data: {}};
  assert.deepEqual(pixelModule.requestBodies([small, huge]), []);
  assert.deepEqual(pixelModule.requestBodies([huge, small]).map((body) => JSON.parse(body).events), [[small]]);
});

test('a checkout event goes at once, with what was queued before it', (t) => {
  installClock(t);
  const pixel = startPixel();
  const views = pageViews(pixel, 2);
  const started = standardEvent('checkout_started', {checkout: {token: 'ck-1', email: 'ada@example.com'}});
  pixel.emit('checkout_started', started);

  assert.equal(pixel.sent.length, 1);
  assert.deepEqual(pixel.sent[0].events.map((event) => event.id), [...views, started.id]);
  assert.deepEqual(pixel.sent[0].events[2].data.checkout, {token: 'ck-1'});
});
