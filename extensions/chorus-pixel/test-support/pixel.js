// Loads the shipped `src/index.js` with `@shopify/web-pixels-extension` resolved to a stub, and builds fake
// Standard APIs to run the registered pixel against.
import {register} from 'node:module';

register('./hooks.js', import.meta.url);

const {registered} = await import('./stub-web-pixels-extension.js');
export const pixelModule = await import('../src/index.js');

if (registered.length !== 1 || typeof registered[0] !== 'function') {
  throw new Error(`src/index.js should register one pixel callback, registered ${registered.length}`);
}
export const registeredPixel = registered[0];

export const SETTINGS = Object.freeze({shopKey: 'k3y/with?odd&chars', appUrl: 'https://chorus.example.com'});
export const ENDPOINT = 'https://chorus.example.com/pixel/k3y%2Fwith%3Fodd%26chars';

function privacy(analyticsProcessingAllowed) {
  return {
    analyticsProcessingAllowed,
    marketingAllowed: analyticsProcessingAllowed,
    preferencesProcessingAllowed: false,
    saleOfDataAllowed: analyticsProcessingAllowed,
  };
}

// A fake Standard API. `beacon: false` leaves `browser.sendBeacon` out (the fetch path); `customerPrivacy`
// replaces the initial consent state that `consent` otherwise builds.
export function startPixel({consent = true, customerPrivacy = privacy(consent), settings = SETTINGS, beacon = true} = {}) {
  const subscribers = new Map();
  const consentSubscribers = [];
  const sent = [];
  const browser = {
    cookie: {get: async () => '', set: async () => ''},
  };
  if (beacon) {
    browser.sendBeacon = (url, body) => {
      sent.push({via: 'beacon', url, body, events: JSON.parse(body).events});
      return Promise.resolve(true);
    };
  }
  const api = {
    analytics: {
      subscribe(name, callback) {
        if (!subscribers.has(name)) subscribers.set(name, []);
        subscribers.get(name).push(callback);
        return () => true;
      },
    },
    browser,
    settings,
    init: {
      context: {document: {location: {pathname: '/', href: 'https://shop.example/'}}},
      data: {customer: null, cart: null, shop: {name: 'Example'}, purchasingCompany: null},
      customerPrivacy,
    },
    customerPrivacy: {
      subscribe(name, callback) {
        if (name === 'visitorConsentCollected') consentSubscribers.push(callback);
        return () => true;
      },
    },
  };
  registeredPixel(api);
  return {
    api,
    sent,
    subscribedNames: () => [...subscribers.keys()],
    emit(name, event) {
      for (const callback of subscribers.get(name) ?? []) callback({name, ...event});
    },
    setConsent(allowed) {
      this.publishConsent(privacy(allowed));
    },
    publishConsent(state) {
      for (const callback of consentSubscribers) callback({customerPrivacy: state});
    },
  };
}

let counter = 0;

// A standard event as Shopify delivers it (what the pixel must not forward is in it too).
export function standardEvent(name, data = {}, {pathname = '/products/shirt', search = '?email=a%40b.example'} = {}) {
  counter += 1;
  return {
    id: `sh-${counter}`,
    name,
    clientId: 'client-1',
    timestamp: '2025-05-01T10:00:00.000Z',
    type: 'standard',
    seq: counter,
    context: {
      document: {
        location: {
          pathname,
          search,
          href: `https://shop.example${pathname}${search}`,
        },
        title: 'Shirt',
        referrer: '',
      },
      navigator: {userAgent: 'test'},
    },
    data,
  };
}
