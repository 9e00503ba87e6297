// poller.js -- how the console keeps a page live without reloading it:
// polling with back-off (the gateway has no push channel).
//
//   - `tick()` runs at once, then again after `delay`. It returns true when
//     what it shows may still change soon (a job is PENDING or RUNNING, or
//     the data differs from the last tick): the delay goes back to `min`
//     (1 s). Otherwise the delay doubles, up to `max` (30 s), so a page of
//     finished jobs costs one request every 30 s.
//   - A failed tick doubles the delay too (at least 2 s) and reports the
//     error with the time of the next try; the next success clears it.
//   - While the tab is hidden nothing runs; showing it again ticks at once.
//   - kick() (a user action, a filter change) ticks now with the delay
//     back at `min`; stop() ends it (the page is left).
// One tick at a time: a tick never overlaps the previous one.

export class Poller {
  constructor(tick, { min = 1000, max = 30000, onError = () => {}, onSchedule = () => {} } = {}) {
    this.tick = tick;
    this.min = min;
    this.max = max;
    this.delay = min;
    this.onError = onError;
    this.onSchedule = onSchedule;
    this.timer = null;
    this.running = false;
    this.stopped = false;
    this.again = false;
    this.onVisible = () => { if (!document.hidden) this.kick(); };
    document.addEventListener('visibilitychange', this.onVisible);
  }

  start() {
    this.run();
    return this;
  }

  kick() {
    this.delay = this.min;
    this.run();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener('visibilitychange', this.onVisible);
  }

  async run() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.running) { // the tick in flight reschedules; ask it to go again at once
      this.again = true;
      return;
    }
    if (document.hidden) return; // resumes on visibilitychange
    this.running = true;
    try {
      const live = await this.tick();
      this.delay = live ? this.min : Math.min(this.delay * 2, this.max);
      this.onError(null);
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      this.delay = Math.min(Math.max(this.delay * 2, 2000), this.max);
      this.onError(e, this.delay);
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      this.delay = this.min;
      this.run();
      return;
    }
    this.onSchedule(this.delay);
    this.timer = setTimeout(() => this.run(), this.delay);
  }
}
