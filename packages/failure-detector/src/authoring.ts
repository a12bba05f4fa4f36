// `@bulwark/failure-detector/authoring`: the fixed-size window the detectors
// keep their arrival intervals in, for a detector of your own. Applications
// use the main entry, `@bulwark/failure-detector`; nothing is exported from
// both.
export { RingBuffer } from './ring-buffer.ts';
