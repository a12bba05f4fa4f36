// The consumer smoke test's CommonJS app: require() every package (Node >= 22.12
// loads ES modules that way) and run one policy.
'use strict';
const assert = require('node:assert/strict');
const { pipeline, isBulwarkError } = require('@bulwark/core');
const { deadline } = require('@bulwark/deadline');
const { retry } = require('@bulwark/retry');
const names = require('../packages.json');

for (const name of names) {
  assert.ok(Object.keys(require(name)).length > 0, `require('${name}') gave no exports`);
}
// Fails unless the policy settles as expected; the interval keeps the process
// alive until then, whatever timers the policy holds.
process.exitCode = 1;
const alive = setInterval(() => {}, 1_000);
const policy = pipeline(deadline(20), retry({ maxAttempts: 2 }));
policy
  .execute(() => new Promise(() => {}))
  .then(
    () => assert.fail('a call that never settles must not succeed'),
    (error) => {
      assert.ok(isBulwarkError(error, 'ERR_DEADLINE_EXCEEDED'), `got ${String(error)}`);
      console.log(`cjs: ok on Node ${process.version} (${names.length} packages required)`);
      process.exitCode = 0;
    },
  )
  .finally(() => clearInterval(alive));
