import {test} from 'node:test';
import assert from 'node:assert/strict';

import {installClock} from '../test-support/clock.js';
import {startPixel, standardEvent} from '../test-support/pixel.js';

const PERSONAL = ['shopper@example.com', '+15555550123', '1 Main Street', 'Springfield', 'Jane', 'Doe', 'a%40b.example'];

const address = {
  address1: '1 Main Street',
  city: 'Springfield',
  country: 'US',
  firstName: 'Jane',
  lastName: 'Doe',
  phone: '+15555550123',
  zip: '12345',
};

function variant(id = 'gid://shopify/ProductVariant/123') {
  return {
    id,
    title: 'Blue / M',
    sku: 'SHIRT-B-M',
    image: {src: 'https://cdn.example/shirt.png'},
    price: {amount: 25.5, currencyCode: 'EUR'},
    product: {
      id: 'gid://shopify/Product/7',
      title: 'Shirt',
      vendor: 'Acme',
      type: 'Tops',
      url: '/products/shirt?email=shopper@example.com',
      untranslatedTitle: 'Shirt',
    },
    untranslatedTitle: 'Blue / M',
  };
}

const checkout = {
  token: 'c1234abcd',
  email: 'shopper@example.com',
  phone: '+15555550123',
  billingAddress: address,
  shippingAddress: address,
  order: {id: 'gid://shopify/OrderIdentity/9', customer: {id: '5', isFirstOrder: true}},
  lineItems: [{quantity: 1, title: 'Shirt', variant: variant()}],
  totalPrice: {amount: 25.5, currencyCode: 'EUR'},
  currencyCode: 'EUR',
  attributes: [{key: 'note', value: 'call Jane Doe'}],
};

function sendOne(t, name, data, location) {
  const clock = installClock(t);
  const pixel = startPixel();
  pixel.emit(name, standardEvent(name, data, location));
  clock.tick(2000);
  assert.equal(pixel.sent.length, 1);
  const [request] = pixel.sent;
  for (const value of PERSONAL) assert.ok(!request.body.includes(value), `${name} body carries ${value}`);
  assert.ok(!request.body.includes('?'), `${name} body carries a query string`);
  return request.events[0].data;
}

test('product_viewed: the variant id, product id and price', (t) => {
  assert.deepEqual(sendOne(t, 'product_viewed', {productVariant: variant()}), {
    productVariant: {
      id: 'gid://shopify/ProductVariant/123',
      product: {id: 'gid://shopify/Product/7'},
      price: {amount: 25.5, currencyCode: 'EUR'},
    },
    url: '/products/shirt',
  });
});

for (const name of ['product_added_to_cart', 'product_removed_from_cart']) {
  test(`${name}: the cart line's quantity and merchandise`, (t) => {
    const cartLine = {quantity: 2, cost: {totalAmount: {amount: 51, currencyCode: 'EUR'}}, merchandise: variant('456')};
    assert.deepEqual(sendOne(t, name, {cartLine}, {pathname: '/cart', search: '?email=shopper@example.com'}), {
      cartLine: {
        quantity: 2,
        merchandise: {id: '456', product: {id: 'gid://shopify/Product/7'}, price: {amount: 25.5, currencyCode: 'EUR'}},
      },
      url: '/cart',
    });
  });
}

for (const name of ['checkout_started', 'checkout_completed']) {
  test(`${name}: the checkout token only (no email, phone or addresses)`, (t) => {
    const location = {pathname: '/checkouts/cn/c1234abcd', search: '?email=shopper@example.com'};
    assert.deepEqual(sendOne(t, name, {checkout}, location), {
      checkout: {token: 'c1234abcd'},
      url: '/checkouts/cn/c1234abcd',
    });
  });
}

test('collection_viewed: the collection id', (t) => {
  const collection = {id: 'gid://shopify/Collection/3', title: 'Summer', productVariants: [variant()]};
  assert.deepEqual(sendOne(t, 'collection_viewed', {collection}, {pathname: '/collections/summer', search: ''}), {
    collection: {id: 'gid://shopify/Collection/3'},
    url: '/collections/summer',
  });
});

test('search_submitted: the query, cut to 100 characters', (t) => {
  const query = `${'é'.repeat(99)}😀 and more`;
  const data = sendOne(t, 'search_submitted', {searchResult: {query, productVariants: [variant()]}}, {
    pathname: '/search',
    search: '?q=shirts&email=shopper@example.com',
  });
  assert.deepEqual(data, {searchResult: {query: `${'é'.repeat(99)}😀`}, url: '/search'});
  assert.equal(Array.from(data.searchResult.query).length, 100);
});

for (const name of ['page_viewed', 'cart_viewed']) {
  test(`${name}: the path alone`, (t) => {
    const cart = {id: 'gid://shopify/Cart/1', lines: [], cost: {totalAmount: {amount: 0, currencyCode: 'EUR'}}};
    assert.deepEqual(sendOne(t, name, name === 'cart_viewed' ? {cart} : {}, {pathname: '/cart', search: '?email=x'}), {
      url: '/cart',
    });
  });
}

test('the path is cut to 300 characters', (t) => {
  const data = sendOne(t, 'page_viewed', {}, {pathname: `/pages/${'a'.repeat(400)}`, search: ''});
  assert.equal(data.url, `/pages/${'a'.repeat(293)}`);
});

test('missing parts of the event give nulls, not errors', (t) => {
  assert.deepEqual(sendOne(t, 'product_viewed', {}, {pathname: '/', search: ''}), {productVariant: null, url: '/'});
});
