/**
 * How the app reaches GitHub: the Octokit type Probot hands out and the two ways of getting one
 * (as an installation, as the App). Shared by the triggers, the task service and the GitHub modules.
 */
import type { ProbotOctokit } from 'probot';

/** An authenticated Octokit as Probot creates it (`context.octokit`, `app.auth(installationId)`). */
export type Octokit = InstanceType<typeof ProbotOctokit>;

/** How the app gets authenticated Octokits. */
export interface GitHubAccess {
  /** An Octokit authenticated as the installation (installation access token). */
  forInstallation(installationId: number): Promise<Octokit>;
  /** An Octokit authenticated as the App (JWT), to mint scoped installation tokens. */
  asApp(): Promise<Octokit>;
}

/**
 * The App's own login (`<slug>[bot]`), from `GET /app`
 * (https://docs.github.com/en/rest/apps/apps#get-the-authenticated-app), read once and shared by
 * every caller of the returned function; a failed read is not kept, so the next call reads again.
 * @param asApp an Octokit authenticated as the App (JWT).
 * @returns a function resolving to the login; it rejects with Octokit's RequestError when the read fails.
 */
export function appLogin(asApp: () => Promise<Octokit>): () => Promise<string> {
  let login: Promise<string> | undefined;
  return () =>
    (login ??= asApp()
      .then((octokit) => octokit.rest.apps.getAuthenticated())
      .then(({ data }) => `${data?.slug}[bot]`)
      .catch((error: unknown) => {
        login = undefined;
        throw error;
      }));
}

/** The HTTP status of an Octokit `RequestError`, or undefined for other errors. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/** A one-line description of an error for logs and replies: `GitHub API error 502: …` for API errors. */
export function errorMessage(error: unknown): string {
  const status = statusOf(error);
  if (status !== undefined && error instanceof Error) return `GitHub API error ${status}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
