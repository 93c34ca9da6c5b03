/** The registration table and the App manifest agree: `app.yml` subscribes exactly the events the triggers handle. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { CHECK_FAILURE_TRIGGERS, TRIGGERS } from '../../src/triggers/index.ts';
import { AUTO_REVIEW_EVENTS } from '../../src/triggers/review-auto.ts';

test('app.yml default_events are the events of the registration table', () => {
  const manifest = parse(readFileSync(path.resolve(import.meta.dirname, '../../app.yml'), 'utf8')) as { default_events: string[]; default_permissions: Record<string, string> };
  const events = new Set([...Object.keys(TRIGGERS), ...Object.keys(CHECK_FAILURE_TRIGGERS), ...AUTO_REVIEW_EVENTS].map((name) => name.split('.')[0]));
  expect(new Set(manifest.default_events)).toEqual(events);
  expect(manifest.default_permissions).toEqual({ contents: 'write', issues: 'write', pull_requests: 'write', metadata: 'read', checks: 'read', actions: 'read' });
});

test('every trigger is registered under its own event', () => {
  for (const [event, trigger] of Object.entries(TRIGGERS)) expect(trigger.event).toBe(event);
  for (const [event, trigger] of Object.entries(CHECK_FAILURE_TRIGGERS)) expect(trigger.event).toBe(event);
});
