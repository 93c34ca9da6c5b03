import { describe, expect, test } from '@jest/globals';
import { TaskSpec } from '../../src/contract.ts';
import { ProxyGrants, proxyUrlWithCredentials, PROXY_SECRET_PREFIX } from '../../src/proxy/grants.ts';

describe('ProxyGrants', () => {
  test('a secret is valid for its task until it expires or is revoked; a reissue kills the old one', () => {
    const clock = { now: 0 };
    const grants = new ProxyGrants({ now: () => clock.now });
    const revoked: string[] = [];
    grants.onRevoke((id) => revoked.push(id));
    const secret = grants.issue('task_1', { allow: ['pypi.org', '*.pythonhosted.org'], ttlMs: 1000 });
    expect(secret.startsWith(PROXY_SECRET_PREFIX)).toBe(true);
    const grant = grants.verify('task_1', secret);
    expect(grant?.allowlist.allows('files.pythonhosted.org')).toBe(true);
    expect(grant?.allowlist.allows('pythonhosted.org')).toBe(false);
    expect(grant?.allowlist.allows('PyPI.org.')).toBe(true);
    expect(grants.verify('task_2', secret)).toBeUndefined();
    expect(grants.verify('task_1', 'ccp_wrong')).toBeUndefined();
    const second = grants.issue('task_1', { allow: ['pypi.org'], ttlMs: 1000 });
    expect(revoked).toEqual(['task_1']);
    expect(grants.verify('task_1', secret)).toBeUndefined();
    clock.now = 999;
    expect(grants.verify('task_1', second)).toBeDefined();
    clock.now = 1000;
    expect(grants.verify('task_1', second)).toBeUndefined();
    expect(revoked).toEqual(['task_1', 'task_1']);
  });

  test('bad input is refused', () => {
    const grants = new ProxyGrants();
    expect(() => grants.issue('', { allow: [], ttlMs: 1 })).toThrow(RangeError);
    expect(() => grants.issue('a:b', { allow: [], ttlMs: 1 })).toThrow(RangeError);
    expect(() => grants.issue('t', { allow: [], ttlMs: 0 })).toThrow(RangeError);
    expect(() => grants.issue('t', { allow: ['*'], ttlMs: 1 })).toThrow(/bare \*/);
  });

  test('proxyUrlWithCredentials gives a TaskSpec network.proxyUrl', () => {
    const url = proxyUrlWithCredentials('http://10.0.1.5:3128/', 'task_abc', 'ccp_x-y_z');
    expect(url).toBe('http://task_abc:ccp_x-y_z@10.0.1.5:3128');
    expect(TaskSpec.shape.network.parse({ proxyUrl: url, allow: ['pypi.org'] })).toEqual({ proxyUrl: url, allow: ['pypi.org'] });
    expect(() => TaskSpec.shape.network.parse({ proxyUrl: 'http://10.0.1.5:3128', allow: [] })).toThrow(/task id and secret/);
    expect(() => proxyUrlWithCredentials('https://proxy:3128', 't', 's')).toThrow(TypeError);
  });
});
