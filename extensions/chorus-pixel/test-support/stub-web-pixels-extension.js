// Stands in for `@shopify/web-pixels-extension` in tests: `register` keeps the pixel's callback, which the
// tests then call with a fake Standard API (analytics, browser, init, settings, customerPrivacy).
export const registered = [];

export function register(callback) {
  registered.push(callback);
}
