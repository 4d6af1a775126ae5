// A fake clock for one test: replaces setTimeout/clearTimeout until the test ends; `tick(ms)` runs the timers
// that come due, in order.
export function installClock(t) {
  const original = {setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout};
  const timers = new Map();
  let now = 0;
  let lastId = 0;
  globalThis.setTimeout = (callback, delay = 0, ...args) => {
    lastId += 1;
    timers.set(lastId, {due: now + Math.max(0, Number(delay) || 0), callback, args});
    return lastId;
  };
  globalThis.clearTimeout = (id) => {
    timers.delete(id);
  };
  t.after(() => Object.assign(globalThis, original));
  return {
    tick(ms) {
      const end = now + ms;
      for (;;) {
        let nextId = null;
        for (const [id, timer] of timers) {
          if (timer.due <= end && (nextId === null || timer.due < timers.get(nextId).due)) nextId = id;
        }
        if (nextId === null) break;
        const timer = timers.get(nextId);
        timers.delete(nextId);
        now = timer.due;
        timer.callback(...timer.args);
      }
      now = end;
    },
  };
}

// Replaces the global fetch until the test ends.
export function stubFetch(t, implementation) {
  const original = globalThis.fetch;
  globalThis.fetch = implementation;
  t.after(() => {
    globalThis.fetch = original;
  });
}
