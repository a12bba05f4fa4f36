// `@bulwark/clock/authoring`: the clock's plumbing for writing a policy or a
// bulwark package: the shared deadline timers, the heap under them and under
// VirtualClock, and how every error message renders a bad value.
// Applications use the main entry, `@bulwark/clock`; nothing is exported from
// both.
export { describeValue } from './clock.ts';
export { DeadlineTimers, deadlineTimers } from './deadline-timers.ts';
export { MinHeap } from './min-heap.ts';
