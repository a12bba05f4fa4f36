import { VirtualClock } from '@bulwark/clock';
import { type DeadlineExceededError, isBulwarkError } from '@bulwark/core';
import { asPromise, bounded, joinRace } from '@bulwark/core/authoring';
import { describe, expect, it } from 'vitest';

/** A signal that counts its live abort listeners. */
function countingSignal(): { controller: AbortController; live: () => number } {
  const controller = new AbortController();
  const signal = controller.signal;
  let live = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<AbortSignal['addEventListener']>) => {
    live++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => {
    live--;
    remove(...args);
  };
  return { controller, live: () => live };
}

describe('bounded()', () => {
  it('settles as the work does, and removes its listener and timer when it does', async () => {
    const clock = new VirtualClock();
    const { controller, live } = countingSignal();
    let settled = 0;
    const value = await bounded(async () => 7, {
      at: 1000,
      clock,
      signal: controller.signal,
      onSettle: () => settled++,
    });
    expect(value).toBe(7);
    expect(live()).toBe(0);
    expect(settled).toBe(1);
    await expect(bounded(() => Promise.reject(new Error('no')), { at: 1000, clock })).rejects.toThrow('no');
  });

  it('rejects with a DeadlineExceededError when its own deadline passes first', async () => {
    const clock = new VirtualClock();
    const reasons: [unknown, boolean][] = [];
    const call = bounded(() => new Promise<never>(() => {}), {
      at: 250,
      clock,
      onEarly: (reason, ours) => reasons.push([reason, ours]),
    });
    const caught = call.catch((e: unknown) => e);
    await clock.advance(250);
    const error = await caught;
    expect(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect((error as DeadlineExceededError).source).toBe('deadline');
    expect(reasons).toEqual([[error, true]]);
  });

  it("passes the caller's abort reason through unchanged, not a deadline error", async () => {
    const clock = new VirtualClock();
    const { controller, live } = countingSignal();
    const reason = { why: 'caller gave up' };
    let settled = 0;
    const call = bounded(() => new Promise<never>(() => {}), {
      at: 1000,
      clock,
      signal: controller.signal,
      onSettle: () => settled++,
    });
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(live()).toBe(0);
    expect(settled).toBe(1);
    // The deadline's timer went with the call: passing it changes nothing.
    await clock.advance(2000);
    expect(settled).toBe(1);
  });

  it('does not run the work when the signal has already aborted', async () => {
    const clock = new VirtualClock();
    let ran = false;
    const reason = new Error('already');
    await expect(
      bounded(
        () => {
          ran = true;
        },
        { clock, signal: AbortSignal.abort(reason) },
      ),
    ).rejects.toBe(reason);
    expect(ran).toBe(false);
  });

  it('turns a synchronous throw into a rejection and still settles once', async () => {
    const clock = new VirtualClock();
    let settled = 0;
    const boom = new Error('sync');
    for (const at of [undefined, 500]) {
      await expect(
        bounded(
          () => {
            throw boom;
          },
          { at, clock, onSettle: () => settled++ },
        ),
      ).rejects.toBe(boom);
    }
    expect(settled).toBe(2);
  });

  it('with ownTimer, arms a timer of its own on the clock and clears it as soon as the call ends', async () => {
    const clock = new VirtualClock();
    let finish!: (value: string) => void;
    const answered = bounded(() => new Promise<string>((resolve) => (finish = resolve)), {
      at: 1000,
      clock,
      ownTimer: true,
    });
    expect(clock.pendingTimers).toBe(1);
    finish('ok');
    expect(await answered).toBe('ok');
    expect(clock.pendingTimers).toBe(0);

    const late = new Error('no answer');
    const silent = bounded(() => new Promise<never>(() => {}), {
      at: clock.now() + 300,
      clock,
      ownTimer: true,
      expired: () => late,
    });
    const caught = silent.catch((e: unknown) => e);
    await clock.advance(299);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(1);
    expect(await caught).toBe(late);
    expect(clock.pendingTimers).toBe(0);
  });

  it('calls the hooks as methods of the options, so one object per call can hold them', async () => {
    const clock = new VirtualClock();
    class Call {
      readonly clock = clock;
      readonly at = 100;
      readonly events: string[] = [];
      expired(): Error {
        this.events.push('expired');
        return new Error(`expired at ${this.at}`);
      }
      onEarly(reason: unknown, ours: boolean): void {
        this.events.push(`early ${String((reason as Error).message)} ${ours}`);
      }
      onSettle(): void {
        this.events.push('settled');
      }
    }
    const call = new Call();
    const caught = bounded(() => new Promise<never>(() => {}), call).catch((e: unknown) => e);
    await clock.advance(100);
    expect(await caught).toMatchObject({ message: 'expired at 100' });
    expect(call.events).toEqual(['expired', 'early expired at 100 true', 'settled']);

    const quiet = new Call();
    expect(await bounded(async () => 'ok', quiet)).toBe('ok');
    expect(quiet.events).toEqual(['settled']);
    const unbounded = { clock, events: [] as string[], onSettle: Call.prototype.onSettle };
    expect(await bounded(async () => 'ok', unbounded)).toBe('ok');
    expect(unbounded.events).toEqual(['settled']);
  });

  it('settles once when the work settles after the signal aborted, and leaves no listener', async () => {
    const clock = new VirtualClock();
    const { controller, live } = countingSignal();
    let finish!: (value: string) => void;
    let settled = 0;
    const call = bounded(() => new Promise<string>((resolve) => (finish = resolve)), {
      at: 1000,
      clock,
      signal: controller.signal,
      onSettle: () => settled++,
    });
    expect(live()).toBe(1);
    controller.abort('gone');
    finish('too late');
    await expect(call).rejects.toBe('gone');
    expect(live()).toBe(0);
    expect(settled).toBe(1);
  });

  it('lets watchers join the pending race it just returned, told innermost first before anyone awaiting it', async () => {
    const clock = new VirtualClock();
    const heard: string[] = [];
    let finish!: (value: string) => void;
    const call = bounded(() => new Promise<string>((resolve) => (finish = resolve)), { at: 1000, clock });
    const race = joinRace(call);
    expect(race).toBeDefined();
    race!.observe({ settled: (v) => heard.push(`inner ${v}`), failed: () => heard.push('inner failed') });
    joinRace(call)!.observe({
      settled: (v) => heard.push(`outer ${v}`),
      failed: () => heard.push('outer failed'),
    });
    const awaited = call.then((v) => heard.push(`awaited ${v}`));
    finish('ok');
    await awaited;
    expect(heard).toEqual(['inner ok', 'outer ok', 'awaited ok']);
    // Settled: nothing left to join; other promises were never joinable.
    expect(joinRace(call)).toBeUndefined();
    expect(joinRace(Promise.resolve('ok'))).toBeUndefined();
    expect(joinRace(bounded(() => 'sync', { at: 1000, clock }))).toBeUndefined();
  });

  it('tells joined watchers of an expiry with the reason the call rejects with', async () => {
    const clock = new VirtualClock();
    const failures: unknown[] = [];
    const call = bounded(() => new Promise<never>(() => {}), { at: 100, clock });
    joinRace(call)!.observe({ settled: () => failures.push('settled?'), failed: (e) => failures.push(e) });
    const older = call;
    // Another bounded call since: the older one can no longer be joined.
    const newer = bounded(() => new Promise<never>(() => {}), { at: 100, clock });
    expect(joinRace(older)).toBeUndefined();
    const caught = older.catch((e: unknown) => e);
    newer.catch(() => {});
    await clock.advance(100);
    const error = await caught;
    expect(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(failures).toEqual([error]);
  });
  it('reports a joined watcher that throws as a warning; the call and the other watchers carry on', async () => {
    const clock = new VirtualClock();
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      let finish!: (value: string) => void;
      const call = bounded(() => new Promise<string>((resolve) => (finish = resolve)), { at: 1000, clock });
      const heard: string[] = [];
      joinRace(call)!.observe({
        settled: () => {
          throw new Error('observer broke');
        },
        failed: () => {},
      });
      joinRace(call)!.observe({ settled: (v) => heard.push(v), failed: () => heard.push('failed') });
      finish('ok');
      await expect(call).resolves.toBe('ok');
      expect(heard).toEqual(['ok']);
      // process warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((w) => (w as Error & { code?: string }).code)).toEqual(['BULWARK_LISTENER_ERROR']);
      expect(warnings[0]!.message).toContain('observer broke');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('asPromise', () => {
  it('returns a native promise as it is, and wraps a value', async () => {
    const promise = Promise.resolve(1);
    expect(asPromise(promise)).toBe(promise);
    const wrapped = asPromise(2);
    expect(wrapped).toBeInstanceOf(Promise);
    await expect(wrapped).resolves.toBe(2);
  });

  it('adopts a thenable that calls its handlers twice as settling once', async () => {
    const twice: PromiseLike<number> = {
      // biome-ignore lint/suspicious/noThenProperty: a hand-made thenable is what is tested
      then(onValue, onError) {
        onValue?.(1);
        onValue?.(2);
        onError?.(new Error('late'));
        return Promise.resolve() as never;
      },
    };
    const seen: number[] = [];
    await asPromise(twice).then((value) => seen.push(value));
    expect(seen).toEqual([1]);
  });

  it('turns a then getter that throws into a rejection instead of throwing', async () => {
    const boom = new Error('getter');
    const hostile = Object.defineProperty({}, 'then', {
      get() {
        throw boom;
      },
    });
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = asPromise(hostile);
    }).not.toThrow();
    await expect(promise).rejects.toBe(boom);
  });
});
