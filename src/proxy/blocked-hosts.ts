/**
 * How a host the agent proxy refused shows in a task's events (a `log` warning the task page lists)
 * and how the final reply finds them again, as Copilot's firewall reports blocked hosts.
 */
import type { ProgressEvent } from '../contract.ts';
import type { BlockReason } from './agent-proxy.ts';

const PREFIX = 'agent network: blocked ';

const WHY: Record<BlockReason, string> = {
  not_allowed: 'not in agent_network.allow of .github/codex.yml',
  port: 'only ports 443 (HTTPS) and 80 (HTTP) are allowed',
  private_address: 'it resolves only to private or reserved addresses',
};

/** The `log` event recording one refused host, e.g. `agent network: blocked evil.example.com (not in agent_network.allow …)`. */
export function blockedHostEvent(host: string, reason: BlockReason, at: Date = new Date()): ProgressEvent {
  return { type: 'log', at: at.toISOString(), level: 'warn', message: `${PREFIX}${host} (${WHY[reason]})` };
}

/** Whether `event` has the shape of a {@link blockedHostEvent} (which only the app's proxy may record). */
export function isBlockedHostEvent(event: ProgressEvent): boolean {
  return event.type === 'log' && event.message.startsWith(PREFIX);
}

/** The refused hosts recorded in `events` by {@link blockedHostEvent}, in order, without repeats. */
export function blockedHostsOf(events: readonly ProgressEvent[]): string[] {
  const hosts: string[] = [];
  for (const e of events) {
    if (e.type !== 'log' || !isBlockedHostEvent(e)) continue;
    const host = e.message.slice(PREFIX.length).split(' ')[0]!;
    if (!hosts.includes(host)) hosts.push(host);
  }
  return hosts;
}
