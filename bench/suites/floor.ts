// The floor: what each step a deadline, a timeout or a pipeline layer may need
// costs on this Node, measured side by side in one run. No target: the figures
// say how close to a bare call the policies can get, and which steps a call
// must not pay for twice.
//
// Every subject is timed the harness's way (sequential calls, awaited when
// they return a promise). Synchronous steps are read against an empty
// synchronous call; steps that wrap an awaited call (a promise wrapper, a
// `.then`, an AsyncLocalStorage frame) against the bare awaited call.
import { AsyncLocalStorage } from 'node:async_hooks';
import { systemClock } from '@bulwark/clock';
import { deadlineTimers, MinHeap } from '@bulwark/clock/authoring';
import { printTable, runSuite, type Subject } from '../harness.ts';

/** Where allocating subjects put what they made, so the compiler cannot drop it. */
const sink: unknown[] = [undefined];

export async function run(): Promise<boolean> {
  const work = async (): Promise<number> => 1;
  const empty = (): undefined => undefined;
  const timers = deadlineTimers(systemClock);
  // Far ahead, so nothing fires during the run; one millisecond slot, as the
  // calls of one busy millisecond share theirs.
  const at = systemClock.now() + 3_600_000;
  const noop = (): void => {};
  // A fresh slot per call instead (each key pushed on the slot heap), as when
  // calls are sparse.
  let sparseAt = at + 1;
  const heap = new MinHeap<number>((a, b) => a < b);
  for (let i = 0; i < 1_000; i++) heap.push(Math.random());
  const longLived = new AbortController().signal;
  const onAbort = (): void => {};
  const storage = new AsyncLocalStorage<{ readonly at: number }>();
  const store = Object.freeze({ at });
  const identity = (value: number): number => value;

  const syncBase = 'empty synchronous call';
  const asyncBase = 'bare awaited call (async () => 1)';
  const subjects: Subject[] = [
    { name: syncBase, call: empty },
    { name: asyncBase, call: () => work() },
    { name: 'clock read (systemClock.now())', call: () => systemClock.now() },
    { name: 'DeadlineTimers schedule + clear, same slot', call: () => timers.schedule(at, noop).clear() },
    {
      name: 'DeadlineTimers schedule + clear, new slot',
      call: () => {
        sparseAt += 1;
        timers.schedule(sparseAt, noop).clear();
      },
    },
    {
      name: 'MinHeap push + pop (1,000 items)',
      call: () => {
        heap.push(Math.random());
        heap.pop();
      },
    },
    {
      name: 'new AbortController()',
      call: () => {
        sink[0] = new AbortController();
      },
    },
    {
      name: 'new AbortController().signal',
      call: () => {
        sink[0] = new AbortController().signal;
      },
    },
    {
      name: 'abort listener add + remove',
      call: () => {
        longLived.addEventListener('abort', onAbort);
        longLived.removeEventListener('abort', onAbort);
      },
    },
    {
      name: 'awaited call in a new Promise',
      call: () => new Promise<number>((resolve, reject) => work().then(resolve, reject)),
    },
    { name: 'awaited call + .then', call: () => work().then(identity) },
    { name: 'awaited call in AsyncLocalStorage.run', call: () => storage.run(store, work) },
  ];
  const result = await runSuite('floor', subjects, { baseline: syncBase });
  const ns = (name: string): number => result.measurements.find((m) => m.name === name)!.nsPerCall;
  const step = (name: string, base: string): number => ns(name) - ns(base);
  const steps: Array<[string, number]> = [
    ['an awaited call (async () => 1)', step(asyncBase, syncBase)],
    ['a clock read', step('clock read (systemClock.now())', syncBase)],
    [
      'a deadline timer, schedule + clear (same slot)',
      step('DeadlineTimers schedule + clear, same slot', syncBase),
    ],
    [
      'a deadline timer, schedule + clear (new slot)',
      step('DeadlineTimers schedule + clear, new slot', syncBase),
    ],
    ['a heap push + pop', step('MinHeap push + pop (1,000 items)', syncBase)],
    ['an AbortController (signal not read)', step('new AbortController()', syncBase)],
    ['an AbortController and its signal', step('new AbortController().signal', syncBase)],
    ['an abort listener, add + remove', step('abort listener add + remove', syncBase)],
    ['a new Promise around an awaited call', step('awaited call in a new Promise', asyncBase)],
    ['a .then on an awaited call', step('awaited call + .then', asyncBase)],
    ['an AsyncLocalStorage.run frame', step('awaited call in AsyncLocalStorage.run', asyncBase)],
  ];
  printTable('floor: the cost of each step, ns', [
    ['step', 'ns'],
    ...steps.map(([name, value]) => [name, value.toFixed(1)]),
  ]);
  const cost = new Map(steps);
  const bare = ns(asyncBase);
  const clockRead = cost.get('a clock read')!;
  const timer = cost.get('a deadline timer, schedule + clear (same slot)')!;
  const wrapper = cost.get('a new Promise around an awaited call')!;
  const then = cost.get('a .then on an awaited call')!;
  const times = (ns: number) => `${((bare + ns) / bare).toFixed(2)} x a bare call of ${bare.toFixed(0)} ns`;
  // deadline + timeout, each a layer that can end the call on its own: each
  // reads the clock, files its instant with the shared timer, and races the
  // call in a promise of its own (the timeout's race ends the attempt, the
  // deadline's the whole call).
  const layer = clockRead + timer + wrapper;
  const deadlineTimeout = 2 * layer;
  console.log(
    `floor of deadline + timeout: 2 x (clock read + deadline timer + promise wrapper) = ${deadlineTimeout.toFixed(0)} ns over a bare call (${times(deadlineTimeout)})`,
  );
  const fused = 2 * clockRead + 2 * timer + wrapper;
  console.log(
    `  the same two limits in one race (possible only with nothing between them): ${fused.toFixed(0)} ns (${times(fused)})`,
  );
  // Retry, a closed breaker and a bulkhead with a free slot need no clock
  // read, timer or promise of their own when nothing times their calls. Retry
  // learns how the attempt ended through a .then (a failure must turn into
  // the next attempt); the breaker and the bulkhead can be told by the
  // timeout's race as it settles (joinRace), with no promise. Their
  // bookkeeping is counted here as nothing.
  const pipelineFloor = deadlineTimeout + then;
  console.log(
    `floor of pipeline(deadline, retry, circuitBreaker, bulkhead, timeout): ${deadlineTimeout.toFixed(0)} ns + 1 .then = ${pipelineFloor.toFixed(0)} ns over a bare call (${times(pipelineFloor)}); 5 x a bare call leaves ${(4 * bare).toFixed(0)} ns for all five layers`,
  );
  sink[0] = undefined;
  return true;
}
