import { describe, expect, test } from '@jest/globals';
import { ProgressEvent } from '../../src/contract.ts';
import { blockedHostEvent, blockedHostsOf } from '../../src/proxy/blocked-hosts.ts';

describe('blocked host events', () => {
  test('are valid log warnings that name the host and why, and are found again without repeats', () => {
    const at = new Date('2026-12-03T10:00:00Z');
    const a = blockedHostEvent('evil.example.com', 'not_allowed', at);
    expect(ProgressEvent.parse(a)).toEqual({
      type: 'log', at: '2026-12-03T10:00:00.000Z', level: 'warn',
      message: 'agent network: blocked evil.example.com (not in agent_network.allow of .github/codex.yml)',
    });
    const events: ProgressEvent[] = [
      { type: 'log', at: at.toISOString(), level: 'info', message: 'agent network: only through the app\'s proxy, to pypi.org' },
      a,
      blockedHostEvent('pypi.org:22', 'port', at),
      blockedHostEvent('evil.example.com', 'not_allowed', at),
      blockedHostEvent('internal.example.org', 'private_address', at),
    ];
    expect(blockedHostsOf(events)).toEqual(['evil.example.com', 'pypi.org:22', 'internal.example.org']);
  });
});
