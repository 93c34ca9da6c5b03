/**
 * Who may trigger the app: users with write, maintain or admin permission on the repository,
 * checked through the collaborator permission API (not `author_association`); bots only when
 * allowlisted by exact login; never the app itself.
 * API: https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user
 */
import type { Octokit } from './client.ts';

/** The gate's verdict. `self` and `bot` are ignored silently; `denied` gets one polite reply. */
export type GateVerdict = 'allowed' | 'self' | 'bot' | 'denied';

/** The sender of an event (`sender` or `comment.user` in webhook payloads). */
export interface Sender {
  login: string;
  type?: string;
}

/**
 * Decides whether `sender` may trigger a task in `owner/repo`.
 * @param botLogin the app's own login (`<slug>[bot]`).
 * @param allowedBots exact bot logins allowed to trigger (e.g. `renovate[bot]`).
 * @throws the Octokit error when the permission API fails for another reason than 404.
 */
export async function gateSender(
  octokit: Octokit,
  repo: { owner: string; repo: string },
  sender: Sender,
  opts: { botLogin?: string; allowedBots: string[] },
): Promise<GateVerdict> {
  if (opts.botLogin && sender.login.toLowerCase() === opts.botLogin.toLowerCase()) return 'self';
  const isBot = sender.type === 'Bot' || sender.login.endsWith('[bot]');
  if (isBot) return opts.allowedBots.includes(sender.login) ? 'allowed' : 'bot';
  try {
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({ ...repo, username: sender.login });
    const role = (data as { role_name?: string }).role_name;
    return data.permission === 'admin' || data.permission === 'write' || role === 'maintain' ? 'allowed' : 'denied';
  } catch (error) {
    if ((error as { status?: number }).status === 404) return 'denied';
    throw error;
  }
}
