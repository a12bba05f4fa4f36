import { type Evictable, KeyedRegistry } from '@bulwark/core/authoring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

interface Entry {
  readonly key: string;
  verdict: Evictable;
}

function registry(maxKeys: number, whenFull?: 'drop-new' | 'overflow') {
  const removed: string[] = [];
  const made: string[] = [];
  const r = new KeyedRegistry<string, Entry>({
    maxKeys,
    create: (key) => {
      made.push(key);
      return { key, verdict: true };
    },
    evictable: (entry) => entry.verdict,
    onRemove: (entry, key) => {
      expect(entry.key).toBe(key);
      removed.push(key);
    },
    whenFull,
  });
  return { r, removed, made };
}

describe('KeyedRegistry', () => {
  it('makes an entry once per key and hands the same one out again', () => {
    const { r, made } = registry(3);
    const a = r.get('a');
    expect(r.get('b')).not.toBe(a);
    expect(r.get('a')).toBe(a);
    expect(r.get('a')).toBe(a);
    expect(made).toEqual(['a', 'b']);
    expect(r.peek('c')).toBeUndefined();
    expect(r.size).toBe(2);
  });

  it('evicts the least recently used entry when an insert goes over the bound', () => {
    const { r, removed } = registry(2);
    r.get('a');
    r.get('b');
    r.get('a'); // b is now the least recently used
    r.get('c');
    expect([...r.keys()]).toEqual(['a', 'c']);
    expect(removed).toEqual(['b']);
    expect(r.evicted).toBe(1);
  });

  it("evicts 'last-resort' entries only when no entry may simply be evicted, and never a refusing one", () => {
    const { r, removed } = registry(3);
    r.get('pinned').verdict = false;
    r.get('reluctant').verdict = 'last-resort';
    r.get('free');
    r.get('new1');
    expect(removed).toEqual(['free']);
    r.get('new1').verdict = false;
    r.get('new2');
    expect(removed).toEqual(['free', 'reluctant']);
    expect([...r.keys()]).toEqual(['pinned', 'new1', 'new2']);
  });

  it("hands a new entry out without keeping it when nothing else may go ('drop-new')", () => {
    const { r, removed } = registry(1);
    r.get('a').verdict = false;
    const b = r.get('b');
    expect(b.key).toBe('b');
    expect(removed).toEqual(['b']);
    expect([...r.keys()]).toEqual(['a']);
    expect(r.evicted).toBe(1);
    // The dropped entry is not remembered as the last one handed out.
    expect(r.get('b')).not.toBe(b);
  });

  it("holds more than maxKeys while nothing may go ('overflow'), and trims back at a later insert", () => {
    const { r, removed } = registry(2, 'overflow');
    r.get('a').verdict = false;
    r.get('b').verdict = false;
    r.get('c');
    expect(r.size).toBe(3);
    expect(removed).toEqual([]);
    r.get('a').verdict = true;
    r.get('b').verdict = true;
    r.get('d');
    expect(removed).toEqual(['c', 'a']);
    expect(r.size).toBe(2);
  });

  it('keeps nothing when create throws, and delete() drops an entry through onRemove', () => {
    const r = new KeyedRegistry<string, number>({
      maxKeys: 2,
      create: (key) => {
        if (key === 'bad') throw new TypeError('bad key');
        return key.length;
      },
    });
    expect(() => r.get('bad')).toThrow(TypeError);
    expect(r.size).toBe(0);
    expect(r.get('abc')).toBe(3);
    expect(r.delete('abc')).toBe(true);
    expect(r.delete('abc')).toBe(false);
    expect(r.size).toBe(0);
  });

  it('rejects a bound or whenFull it cannot use, naming the value', () => {
    const create = (k: string) => k;
    expect(() => new KeyedRegistry({ maxKeys: 0, create })).toThrow(/maxKeys must be an integer >= 1, got 0/);
    expect(
      () => new KeyedRegistry({ maxKeys: 1, create, whenFull: 'never' as unknown as 'overflow' }),
    ).toThrow(/got never/);
  });

  it('never holds more than maxKeys with drop-new, and keeps the most recently used evictable keys', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.boolean()), { maxLength: 60 }),
        (maxKeys, uses) => {
          const { r } = registry(maxKeys);
          const order: string[] = []; // a reference LRU list of the keys held
          for (const [k, pin] of uses) {
            const key = `k${k}`;
            const entry = r.get(key);
            const at = order.indexOf(key);
            if (at >= 0) order.splice(at, 1);
            order.push(key);
            if (order.length > maxKeys) {
              const victim = order.findIndex((x) => x !== key && r.peek(x)?.verdict !== false);
              order.splice(victim >= 0 ? victim : order.indexOf(key), 1);
            }
            if (r.peek(key) === entry) entry.verdict = !pin;
            expect([...r.keys()]).toEqual(order);
            expect(r.size).toBeLessThanOrEqual(maxKeys);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
  it('set() puts a value as the most recently used, replacing and evicting through onRemove', () => {
    const removed: string[] = [];
    const r = new KeyedRegistry<string, number>({
      maxKeys: 2,
      onRemove: (value, key) => removed.push(`${key}=${value}`),
    });
    r.set('a', 1);
    r.set('b', 2);
    r.set('a', 3); // replaces a=1, and a is now the most recently used
    expect(removed).toEqual(['a=1']);
    r.set('c', 4); // over the bound: b, the least recently used, goes
    expect(removed).toEqual(['a=1', 'b=2']);
    expect([...r.entries()]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
    expect(r.evicted).toBe(1);
    r.set('c', 4); // the same value again: nothing is removed
    expect(removed).toEqual(['a=1', 'b=2']);
  });

  it('set() after get() hands out the new value for that key', () => {
    const { r } = registry(3);
    const made = r.get('a');
    const replacement: Entry = { key: 'a', verdict: true };
    r.set('a', replacement);
    expect(r.get('a')).toBe(replacement);
    expect(r.get('a')).not.toBe(made);
  });

  it('clear() drops every entry through onRemove; without create, get() of a missing key throws', () => {
    const removed: string[] = [];
    const r = new KeyedRegistry<string, number>({ maxKeys: 4, onRemove: (_, key) => removed.push(key) });
    r.set('a', 1);
    r.set('b', 2);
    r.clear();
    expect(removed).toEqual(['a', 'b']);
    expect(r.size).toBe(0);
    expect(r.evicted).toBe(0);
    expect(() => r.get('a')).toThrow(
      new TypeError('KeyedRegistry: no entry for "a", and no create option to make one'),
    );
    expect(r.size).toBe(0);
  });
});
