import { MinHeap } from '@bulwark/clock/authoring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

describe('MinHeap', () => {
  it('pops every pushed item in order, whatever the interleaving of pushes and pops', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant('pop' as const))),
        (ops) => {
          const heap = new MinHeap<number>((a, b) => a < b);
          const reference: number[] = [];
          for (const op of ops) {
            if (op === 'pop') {
              reference.sort((a, b) => a - b);
              expect(heap.pop()).toBe(reference.shift());
            } else {
              heap.push(op);
              reference.push(op);
            }
            expect(heap.size).toBe(reference.length);
            expect(heap.peek()).toBe(reference.length === 0 ? undefined : Math.min(...reference));
          }
        },
      ),
    );
  });

  it('takes a sorted array as its contents', () => {
    const heap = new MinHeap<number>((a, b) => a < b);
    heap.push(9);
    heap.resetSorted([1, 2, 3]);
    expect([heap.pop(), heap.pop(), heap.pop(), heap.pop()]).toEqual([1, 2, 3, undefined]);
  });
});
