import {test} from 'node:test';
import assert from 'node:assert/strict';

import {installClock, stubFetch} from '../test-support/clock.js';
import {startPixel, standardEvent} from '../test-support/pixel.js';

function emitPages(pixel, count) {
  for (let i = 0; i < count; i += 1) pixel.emit('page_viewed', standardEvent('page_viewed'));
}

test('without analytics consent nothing is queued or sent', (t) => {
  const clock = installClock(t);
  const calls = [];
  stubFetch(t, async (url) => {
    calls.push(url);
    return new Response(null, {status: 204});
  });
  for (const beacon of [true, false]) {
    const pixel = startPixel({consent: false, beacon});
    emitPages(pixel, 25);
    clock.tick(10000);
    assert.deepEqual(pixel.sent, []);
  }
  assert.deepEqual(calls, []);
});

test('sending starts once consent is collected, with only the events after it', (t) => {
  const clock = installClock(t);
  const pixel = startPixel({consent: false});
  emitPages(pixel, 5);
  clock.tick(1000);
  assert.equal(pixel.sent.length, 0);

  pixel.setConsent(true); // before a 2-second wait could have ended: nothing from before is waiting
  const event = standardEvent('product_viewed', {productVariant: {id: '1', product: {id: '2'}, price: {amount: 1, currencyCode: 'EUR'}}});
  pixel.emit('product_viewed', event);
  clock.tick(2000);
  assert.equal(pixel.sent.length, 1);
  assert.deepEqual(pixel.sent[0].events.map((sent) => sent.id), [event.id]);
});

test('withdrawn consent drops what is queued and stops sending', (t) => {
  const clock = installClock(t);
  const pixel = startPixel({consent: true});
  emitPages(pixel, 4);
  pixel.setConsent(false);
  clock.tick(5000);
  emitPages(pixel, 15);
  clock.tick(5000);
  assert.deepEqual(pixel.sent, []);

  // Given again: new events only.
  pixel.setConsent(true);
  emitPages(pixel, 1);
  clock.tick(2000);
  assert.equal(pixel.sent.length, 1);
  assert.equal(pixel.sent[0].events.length, 1);
});

test('marketing or sale-of-data consent without analytics consent does not count', (t) => {
  const clock = installClock(t);
  const others = {marketingAllowed: true, preferencesProcessingAllowed: true, saleOfDataAllowed: true};
  const pixel = startPixel({customerPrivacy: {analyticsProcessingAllowed: false, ...others}});
  emitPages(pixel, 12);
  clock.tick(2000);
  pixel.publishConsent({analyticsProcessingAllowed: false, ...others});
  pixel.publishConsent({...others}); // no answer is no consent
  emitPages(pixel, 12);
  clock.tick(2000);
  assert.deepEqual(pixel.sent, []);
});
