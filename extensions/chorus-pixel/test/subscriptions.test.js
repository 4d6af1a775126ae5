import {test} from 'node:test';
import assert from 'node:assert/strict';

import {installClock} from '../test-support/clock.js';
import {pixelModule, registeredPixel, startPixel, standardEvent} from '../test-support/pixel.js';

const EXPECTED = [
  'page_viewed',
  'product_viewed',
  'collection_viewed',
  'search_submitted',
  'product_added_to_cart',
  'product_removed_from_cart',
  'cart_viewed',
  'checkout_started',
  'checkout_completed',
];

test('src/index.js registers the pixel it exports', () => {
  assert.equal(registeredPixel, pixelModule.pixel);
  assert.deepEqual([...pixelModule.SUBSCRIBED_EVENTS].sort(), [...EXPECTED].sort());
});

test('subscribes to each standard event Chorus uses, and to nothing else', () => {
  const pixel = startPixel();
  assert.deepEqual(pixel.subscribedNames().sort(), [...EXPECTED].sort());
});

test('every subscribed event is queued and sent under its name', (t) => {
  const clock = installClock(t);
  const pixel = startPixel();
  for (const name of EXPECTED) pixel.emit(name, standardEvent(name));
  clock.tick(2000);
  // The checkout's events go at once (each with what was queued before it).
  assert.deepEqual(pixel.sent.flatMap((request) => request.events.map((event) => event.name)), EXPECTED);
  assert.equal(pixel.sent.at(-1).events.at(-1).name, 'checkout_completed');
});

test('without both settings the pixel sends nothing', (t) => {
  const clock = installClock(t);
  for (const settings of [{}, {shopKey: 'abc'}, {appUrl: 'https://chorus.example.com'}, {shopKey: '', appUrl: 'x'}]) {
    const pixel = startPixel({settings});
    for (let i = 0; i < 12; i += 1) pixel.emit('page_viewed', standardEvent('page_viewed'));
    clock.tick(5000);
    assert.deepEqual(pixel.sent, [], JSON.stringify(settings));
  }
});
