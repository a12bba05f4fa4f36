import { VirtualClock } from '@bulwark/clock';
import {
  BulwarkError,
  CallbackError,
  DeadlineExceededError,
  InvalidOptionsError,
  isBulwarkError,
  isRefusal,
} from '@bulwark/core';
import { EventHub, formatValue, markRefusal, OptionsChecker } from '@bulwark/core/authoring';
import { describe, expect, it, vi } from 'vitest';

describe('BulwarkError', () => {
  it('carries a literal code, a cause and retryAfterMs', () => {
    const cause = new Error('socket hang up');
    const error = new BulwarkError('ERR_STORE_UNAVAILABLE', 'store down', { cause, retryAfterMs: 250 });
    expect(error.code).toBe('ERR_STORE_UNAVAILABLE');
    expect(error.cause).toBe(cause);
    expect(error.retryAfterMs).toBe(250);
    expect(error.name).toBe('BulwarkError');
    expect(error).toBeInstanceOf(Error);
  });

  it('is recognised by its brand, even from another copy of the package', () => {
    const fromAnotherCopy = Object.assign(new Error('x'), {
      code: 'ERR_CIRCUIT_OPEN',
      [Symbol.for('bulwark.error')]: true,
    });
    expect(isBulwarkError(fromAnotherCopy)).toBe(true);
    expect(isBulwarkError(fromAnotherCopy, 'ERR_CIRCUIT_OPEN')).toBe(true);
    expect(isBulwarkError(fromAnotherCopy, 'ERR_BULKHEAD_FULL')).toBe(false);
    expect(isBulwarkError(new Error('plain'))).toBe(false);
    expect(isBulwarkError(null)).toBe(false);
    expect(isBulwarkError('ERR_CIRCUIT_OPEN')).toBe(false);
  });

  it('names the subclass and says which budget ran out', () => {
    const deadline = new DeadlineExceededError('deadline', 1500);
    expect(deadline.name).toBe('DeadlineExceededError');
    expect(deadline.message).toBe('deadline exceeded: the 1500 ms budget ran out');
    expect(isBulwarkError(deadline, 'ERR_DEADLINE_EXCEEDED')).toBe(true);
    expect(new DeadlineExceededError('timeout', 20).message).toBe('attempt timed out after 20 ms');
  });

  it('wraps a throwing callback with its cause', () => {
    const cause = new TypeError('bad');
    const error = new CallbackError('retryOn', cause);
    expect(error.message).toBe('retryOn threw: bad');
    expect(error.cause).toBe(cause);
    expect(isBulwarkError(error, 'ERR_CALLBACK_FAILED')).toBe(true);
  });
});

describe('BulwarkError without a stack, and refusal classes', () => {
  /** The lines of `stack` after the first (`Name: message`): one per frame. */
  const frames = (error: Error) => (error.stack ?? '').split('\n').slice(1);

  it('captures no frame with stack: false, and keeps its code, message, retryAfterMs and brand', () => {
    const cheap = new BulwarkError('ERR_RATE_LIMITED', 'slow down', { retryAfterMs: 40, stack: false });
    expect(frames(cheap)).toEqual([]);
    expect(cheap.stack).toBe('BulwarkError: slow down');
    expect(cheap.code).toBe('ERR_RATE_LIMITED');
    expect(cheap.retryAfterMs).toBe(40);
    expect(isBulwarkError(cheap, 'ERR_RATE_LIMITED')).toBe(true);
    expect(cheap).toBeInstanceOf(BulwarkError);
    expect(frames(new BulwarkError('ERR_RATE_LIMITED', 'slow down')).length).toBeGreaterThan(0);
  });

  it('leaves Error.stackTraceLimit as it found it, even when building the error throws', () => {
    const before = Error.stackTraceLimit;
    new BulwarkError('ERR_X', 'x', { stack: false });
    expect(Error.stackTraceLimit).toBe(before);
    const throwingCause = {
      get cause(): unknown {
        throw new Error('getter');
      },
      stack: false,
    };
    expect(() => new BulwarkError('ERR_X', 'x', throwingCause as never)).toThrow('getter');
    expect(Error.stackTraceLimit).toBe(before);
  });

  it('brands every error of a class marked with markRefusal() through its prototype', () => {
    class Shed extends BulwarkError<'ERR_SHED'> {
      constructor(options?: { refusal?: boolean }) {
        super('ERR_SHED', 'shed', options);
      }
    }
    markRefusal(Shed);
    const shed = new Shed();
    expect(isRefusal(shed)).toBe(true);
    expect(Object.getOwnPropertySymbols(shed)).not.toContain(Symbol.for('bulwark.refusal'));
    // One built with refusal: false says otherwise, for itself only.
    expect(isRefusal(new Shed({ refusal: false }))).toBe(false);
    expect(isRefusal(new Shed())).toBe(true);
    // The brand is Symbol.for's: another copy of core reads the same key.
    expect((shed as unknown as Record<symbol, unknown>)[Symbol.for('bulwark.refusal')]).toBe(true);
    expect(isRefusal(new BulwarkError('ERR_SHED', 'not marked'))).toBe(false);
  });
});

describe('OptionsChecker', () => {
  it('lists every violation with its value in one RangeError', () => {
    const check = new OptionsChecker('thing()');
    check.number('maxAttempts', 0, { integer: true, min: 1 });
    check.number('ratio', Number.NaN, { min: 0, max: 1000 });
    check.number('delayMs', -0, { above: 0 });
    check.oneOf('jitter', 'sometimes', ['full', 'equal', 'none']);
    check.func('retryOn', 'yes');
    check.number('ok', 5, { min: 1 });
    let thrown: unknown;
    try {
      check.done();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RangeError);
    expect(thrown).toBeInstanceOf(InvalidOptionsError);
    const error = thrown as InvalidOptionsError;
    expect(error.violations.map((v) => v.option)).toEqual([
      'maxAttempts',
      'ratio',
      'delayMs',
      'jitter',
      'retryOn',
    ]);
    expect(error.message).toBe(
      [
        'thing(): invalid options (5):',
        '  - maxAttempts must be an integer >= 1, got 0',
        '  - ratio must be a finite number >= 0 <= 1000, got NaN',
        '  - delayMs must be a finite number > 0, got -0',
        '  - jitter must be one of "full", "equal", "none", got "sometimes"',
        '  - retryOn must be a function, got "yes"',
      ].join('\n'),
    );
    expect(isBulwarkError(error, 'ERR_INVALID_OPTIONS')).toBe(true);
  });

  it('passes when every value is valid or absent', () => {
    const check = new OptionsChecker('thing()');
    check.number('a', undefined, { min: 1 });
    check.number('b', Number.POSITIVE_INFINITY, { min: 0, infinite: true });
    check.oneOf('c', undefined, ['x']);
    expect(check.failed).toBe(false);
    expect(() => check.done()).not.toThrow();
  });

  it('accepts a clock with now(), and with setTimeout() when timers are needed, and names anything else', () => {
    const check = new OptionsChecker('thing()');
    expect(check.clock('clock', undefined)).toBe(true);
    expect(check.clock('clock', new VirtualClock(), true)).toBe(true);
    expect(check.clock('clock', { now: () => 0 })).toBe(true);
    expect(check.clock('clock', { now: () => 0 }, true)).toBe(false);
    expect(check.clock('other', null)).toBe(false);
    expect(() => check.done()).toThrow(
      'thing(): invalid options (2):\n' +
        '  - clock must be a Clock (with now() and setTimeout()), got {}\n' +
        '  - other must be a Clock (with now()), got null',
    );
  });

  it('renders values in error messages the way every bulwark error does', () => {
    expect(formatValue('x'.repeat(100))).toBe(JSON.stringify(`${'x'.repeat(77)}...`));
    expect(formatValue(-0)).toBe('-0');
    expect(formatValue(Number.NaN)).toBe('NaN');
    expect(formatValue(function named() {})).toBe('[function named]');
    expect(formatValue(10n)).toBe('10n');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
  });
});

describe('EventHub', () => {
  it('delivers events to listeners until they are disposed', () => {
    const hub = new EventHub<{ n: number }>('test.onThing');
    const seen: number[] = [];
    expect(hub.listening).toBe(false);
    const a = hub.subscribe((e) => seen.push(e.n));
    {
      using _b = hub.subscribe((e) => seen.push(e.n * 10));
      hub.emit({ n: 1 });
    }
    hub.emit({ n: 2 });
    a.dispose();
    a.dispose();
    hub.emit({ n: 3 });
    expect(seen).toEqual([1, 10, 2]);
    expect(hub.listening).toBe(false);
  });

  it('keeps going when a listener throws, and reports it as a warning', () => {
    const hub = new EventHub<number>('test.onThing');
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const seen: number[] = [];
    hub.subscribe(() => {
      throw new Error('listener bug');
    });
    hub.subscribe((n) => seen.push(n));
    expect(() => hub.emit(7)).not.toThrow();
    expect(seen).toEqual([7]);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('a test.onThing listener threw'), {
      code: 'BULWARK_LISTENER_ERROR',
    });
    warn.mockRestore();
  });

  it('rejects a listener that is not a function', () => {
    const hub = new EventHub<number>('test.onThing');
    expect(() => hub.subscribe(42 as never)).toThrow(/listener must be a function, got number/);
  });
});
