// Module resolution hook: `@shopify/web-pixels-extension` resolves to the stub next to this file.
const STUB = new URL('./stub-web-pixels-extension.js', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === '@shopify/web-pixels-extension') {
    return {url: STUB, shortCircuit: true};
  }
  return nextResolve(specifier, context);
}
