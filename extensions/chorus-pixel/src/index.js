import {register} from '@shopify/web-pixels-extension';

// The standard events Chorus uses. Everything else Shopify publishes is ignored.
export const SUBSCRIBED_EVENTS = Object.freeze([
  'page_viewed',
  'product_viewed',
  'collection_viewed',
  'search_submitted',
  'product_added_to_cart',
  'product_removed_from_cart',
  'cart_viewed',
  'checkout_started',
  'checkout_completed',
]);

// Sent at once, with whatever is queued: the page is about to change, and they prove whose browser it is.
const SENT_AT_ONCE = new Set(['checkout_started', 'checkout_completed']);
export const BATCH_SIZE = 10; // queued events that trigger a send
export const FLUSH_DELAY_MS = 2000; // after the first queued event, send whatever is queued
export const MAX_EVENTS_PER_REQUEST = 20;
export const MAX_BODY_BYTES = 64 * 1024; // every body stays below this (the oldest events go first)
export const MAX_PATH_CHARS = 300;
export const MAX_QUERY_CHARS = 100;

const encoder = new TextEncoder();

// Cut by code points, never inside a surrogate pair (which would not survive UTF-8 on the server).
function truncate(value, limit) {
  if (typeof value !== 'string') return null;
  const chars = Array.from(value);
  return chars.length > limit ? chars.slice(0, limit).join('') : value;
}

// Shopify's ids are strings (often GIDs): passed on as they are, the server parses them.
function id(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function amount(value) {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string') return value;
  return null;
}

function isObject(value) {
  return typeof value === 'object' && value !== null;
}

function variant(value) {
  if (!isObject(value)) return null;
  const product = isObject(value.product) ? value.product : {};
  const price = isObject(value.price) ? value.price : {};
  return {
    id: id(value.id),
    product: {id: id(product.id)},
    price: {
      amount: amount(price.amount),
      currencyCode: typeof price.currencyCode === 'string' ? price.currencyCode : null,
    },
  };
}

function cartLine(value) {
  if (!isObject(value)) return null;
  return {
    quantity: typeof value.quantity === 'number' && Number.isFinite(value.quantity) ? value.quantity : null,
    merchandise: variant(value.merchandise),
  };
}

// Only the fields the server reads: no email, phone, address, customer or query string ever leaves.
function projectData(name, data) {
  const source = isObject(data) ? data : {};
  switch (name) {
    case 'product_viewed':
      return {productVariant: variant(source.productVariant)};
    case 'product_added_to_cart':
    case 'product_removed_from_cart':
      return {cartLine: cartLine(source.cartLine)};
    case 'checkout_started':
    case 'checkout_completed':
      return {checkout: {token: id(isObject(source.checkout) ? source.checkout.token : null)}};
    case 'collection_viewed':
      return {collection: {id: id(isObject(source.collection) ? source.collection.id : null)}};
    case 'search_submitted': {
      const query = isObject(source.searchResult) ? source.searchResult.query : null;
      return {searchResult: {query: truncate(query, MAX_QUERY_CHARS)}};
    }
    default:
      return {};
  }
}

// The page's path alone: the query string and fragment may carry personal data.
function pathname(event) {
  const location = event?.context?.document?.location;
  if (!isObject(location) || typeof location.pathname !== 'string') return null;
  return truncate(location.pathname.split(/[?#]/, 1)[0], MAX_PATH_CHARS);
}

// `name` is the event it was subscribed as (Shopify's `event.name`).
export function projectEvent(name, event) {
  const data = projectData(name, event.data);
  const url = pathname(event);
  if (url !== null) data.url = url;
  return {
    id: id(event.id),
    name,
    timestamp: typeof event.timestamp === 'string' ? event.timestamp : null,
    clientId: id(event.clientId),
    data,
  };
}

function endpoint(settings) {
  const shopKey = settings?.shopKey;
  const appUrl = settings?.appUrl;
  if (typeof shopKey !== 'string' || shopKey === '' || typeof appUrl !== 'string' || appUrl === '') return null;
  return `${appUrl.replace(/\/+$/, '')}/pixel/${encodeURIComponent(shopKey)}`;
}

// The request bodies for queued events: at most MAX_EVENTS_PER_REQUEST events each, and below
// MAX_BODY_BYTES, dropping a request's oldest events while it is too large.
export function requestBodies(events) {
  const bodies = [];
  for (let start = 0; start < events.length; start += MAX_EVENTS_PER_REQUEST) {
    let batch = events.slice(start, start + MAX_EVENTS_PER_REQUEST);
    while (batch.length > 0) {
      const body = JSON.stringify({events: batch});
      if (encoder.encode(body).length < MAX_BODY_BYTES) {
        bodies.push(body);
        break;
      }
      batch = batch.slice(1);
    }
  }
  return bodies;
}

export function pixel({analytics, browser, init, settings, customerPrivacy}) {
  const url = endpoint(settings);
  let allowed = init?.customerPrivacy?.analyticsProcessingAllowed === true;
  let queue = [];
  let timer = null;

  function cancelTimer() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  }

  // One attempt per batch: a refused or failed send is dropped, never retried. Both ways send text/plain, a
  // simple request that needs no CORS preflight. (Shopify's docs mark `browser.sendBeacon` deprecated in
  // favour of `fetch` with `keepalive`; the pixel uses it while the sandbox still offers it.)
  function post(body) {
    try {
      if (typeof browser?.sendBeacon === 'function') {
        Promise.resolve(browser.sendBeacon(url, body)).catch(() => {});
      } else if (typeof fetch === 'function') {
        fetch(url, {method: 'POST', body, keepalive: true, headers: {'Content-Type': 'text/plain'}}).catch(() => {});
      }
    } catch {
      // Dropped: analytics never break the storefront.
    }
  }

  function flush() {
    cancelTimer();
    const events = queue;
    queue = [];
    if (!allowed || url === null) return;
    for (const body of requestBodies(events)) post(body);
  }

  function enqueue(name, event) {
    if (!allowed || url === null || !isObject(event)) return;
    queue.push(projectEvent(name, event));
    if (queue.length >= BATCH_SIZE || SENT_AT_ONCE.has(name)) {
      flush();
    } else if (timer === null) {
      timer = setTimeout(flush, FLUSH_DELAY_MS);
    }
  }

  customerPrivacy?.subscribe?.('visitorConsentCollected', (event) => {
    allowed = event?.customerPrivacy?.analyticsProcessingAllowed === true;
    if (!allowed) {
      // Withdrawn: whatever was waiting is forgotten, not sent.
      cancelTimer();
      queue = [];
    }
  });

  for (const name of SUBSCRIBED_EVENTS) {
    analytics.subscribe(name, (event) => enqueue(name, event));
  }
}

register(pixel);
