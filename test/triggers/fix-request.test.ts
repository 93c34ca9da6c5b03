/** When a mention on a pull request is about its checks (the rule of requested fixes). */
import { expect, test } from '@jest/globals';
import { isAboutChecks } from '../../src/triggers/fix-request.ts';

test('instructions about CI, checks, the build, workflows or failing tests are about the checks', () => {
  for (const text of ['fix ci', 'fix CI please', 'fix the failing checks', 'the check is red', 'fix the build', 'why did the workflow fail?', 'fix the pipeline', 'fix the failing tests', 'tests are failing', 'the test fails on main', 'look at the test failures']) {
    expect([text, isAboutChecks(text)]).toEqual([text, true]);
  }
});

test('other instructions are ordinary tasks', () => {
  for (const text of ['', 'fix the failing add test', 'add a test for parseAmount', 'rebuild the cache layer', 'circle the wagons', 'checkout the docs', 'use a constant here', 'cicada']) {
    expect([text, isAboutChecks(text)]).toEqual([text, false]);
  }
});
