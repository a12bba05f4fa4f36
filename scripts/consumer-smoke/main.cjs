// The consumer smoke test's CommonJS app: require() every package, and its
// `/authoring` entry where it has one (Node >= 22.12 loads ES modules that
// way), and run one policy.
'use strict';
const assert = require('node:assert/strict');
const { pipeline, isBulwarkError } = require('@bulwark/core');
const { deadline } = require('@bulwark/deadline');
const { retry } = require('@bulwark/retry');
const names = require('../packages.json');

let entries = 0;
for (const name of names) {
  assert.ok(Object.keys(require(name)).length > 0, `require('${name}') gave no exports`);
  if ('./authoring' in (require(`${name}/package.json`).exports ?? {})) {
    const path = `${name}/authoring`;
    assert.ok(Object.keys(require(path)).length > 0, `require('${path}') gave no exports`);
    entries++;
  }
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
      console.log(
        `cjs: ok on Node ${process.version} (${names.length} packages and ${entries} authoring entries required)`,
      );
      process.exitCode = 0;
    },
  )
  .finally(() => clearInterval(alive));
