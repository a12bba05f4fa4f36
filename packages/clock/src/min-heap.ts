/**
 * A binary min-heap: `peek()` is the item that comes first by `before`. Push
 * and pop are O(log n), with no allocation beyond the backing array. The one
 * heap of bulwark (timers of a virtual clock, deadline buckets).
 */
export class MinHeap<T> {
  readonly #before: (a: T, b: T) => boolean;
  readonly #items: T[] = [];

  /** @param before true when `a` must come out before `b`. */
  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#items.length;
  }

  /** The first item, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    const before = this.#before;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  /** Removes and returns the first item (undefined when empty). */
  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    const n = items.length;
    if (n === 0) return top;
    const before = this.#before;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(items[r]!, items[l]!) ? r : l;
      if (!before(items[c]!, last!)) break;
      items[i] = items[c]!;
      i = c;
    }
    items[i] = last!;
    return top;
  }

  /** Replaces the contents with `sorted` (already in order, which is a valid heap). */
  resetSorted(sorted: readonly T[]): void {
    this.#items.length = 0;
    for (const item of sorted) this.#items.push(item);
  }
}
