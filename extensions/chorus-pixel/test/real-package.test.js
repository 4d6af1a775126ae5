// The shipped entry point with the real `@shopify/web-pixels-extension` (installed by `npm ci`): its
// `register` hands the pixel to the sandbox's `shopify.extend`, faked here.
import {test} from 'node:test';
import assert from 'node:assert/strict';

test('with the real package, src/index.js hands one pixel to the sandbox', async () => {
  const extended = [];
  globalThis.shopify = {extend: (target, callback) => extended.push({target, callback})};
  try {
    const module = await import('../src/index.js');
    assert.equal(extended.length, 1);
    assert.equal(typeof extended[0].target, 'string');
    assert.equal(extended[0].callback, module.pixel);
  } finally {
    delete globalThis.shopify;
  }
});
