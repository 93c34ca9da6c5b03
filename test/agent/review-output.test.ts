import { describe, expect, test } from '@jest/globals';
import { ReviewOutputError, parseReviewOutput, repoRelativePath, restateReviewPrompt } from '../../src/agent/review-output.ts';

const ROOT = '/work/task-1/repo';

const review = (over: Record<string, unknown> = {}) => ({
  findings: [
    {
      title: 'Off-by-one drops the last record',
      body: '`slice(0, n - 1)` loses the final element when `n` is the length.',
      confidence_score: 0.8,
      priority: 1,
      code_location: { absolute_file_path: `${ROOT}/src/records.js`, line_range: { start: 12, end: 14 } },
    },
    {
      title: 'Error is swallowed',
      body: 'The catch block returns undefined.',
      confidence_score: 0.55,
      priority: 2,
      code_location: { absolute_file_path: 'src/io.js', line_range: { start: 40, end: 40 } },
    },
  ],
  overall_correctness: 'patch is incorrect',
  overall_explanation: 'The new pagination loses data.',
  overall_confidence_score: 0.7,
  ...over,
});

describe('parseReviewOutput', () => {
  test('a bare object: findings with repository-relative paths, ranges and confidence; the verdict', () => {
    const parsed = parseReviewOutput(JSON.stringify(review()), { workspaceRoot: ROOT });
    expect(parsed.findings).toEqual([
      {
        title: 'Off-by-one drops the last record',
        body: '`slice(0, n - 1)` loses the final element when `n` is the length.',
        priority: 1,
        path: 'src/records.js',
        startLine: 12,
        line: 14,
        confidence: 0.8,
      },
      { title: 'Error is swallowed', body: 'The catch block returns undefined.', priority: 2, path: 'src/io.js', line: 40, confidence: 0.55 },
    ]);
    expect(parsed.verdict).toEqual({ correctness: 'incorrect', explanation: 'The new pagination loses data.', confidence: 0.7, resolvedFindings: [] });
  });

  test('inside a fenced block with prose around it, and after an example object in the prose', () => {
    const message = [
      'I ran `node --test` (2 failures) and read the diff. The format is {"findings": [...]}, so here it is:',
      '',
      '```json',
      JSON.stringify(review({ resolved_findings: ['f1', 'f1', 'f2'] }), null, 2),
      '```',
      '',
      'Let me know if you want more {detail}.',
    ].join('\n');
    const parsed = parseReviewOutput(message, { workspaceRoot: `${ROOT}/` });
    expect(parsed.findings.map((f) => f.path)).toEqual(['src/records.js', 'src/io.js']);
    expect(parsed.verdict.resolvedFindings).toEqual(['f1', 'f2']);
  });

  test('the last valid object wins; braces inside strings do not confuse the scan', () => {
    const first = review({ overall_explanation: 'first draft' });
    const second = review({ findings: [], overall_correctness: 'patch is correct', overall_explanation: 'uses "{" and \\"}\\" safely' });
    const parsed = parseReviewOutput(`${JSON.stringify(first)}\nOn reflection:\n${JSON.stringify(second)}`, { workspaceRoot: ROOT });
    expect(parsed.findings).toEqual([]);
    expect(parsed.verdict).toMatchObject({ correctness: 'correct', explanation: 'uses "{" and \\"}\\" safely' });
  });

  test('lenient forms: a [P1] title tag gives the priority, a backwards range is swapped, the verdict ignores case and a period', () => {
    const out = review({ overall_correctness: 'Patch is correct.' });
    const f = { ...out.findings[0]!, title: '[P0] Null dereference', priority: undefined, code_location: { absolute_file_path: './lib/../src/a.js', line_range: { start: 9, end: 3 } } };
    const parsed = parseReviewOutput(JSON.stringify({ ...out, findings: [f] }), { workspaceRoot: ROOT });
    expect(parsed.findings[0]).toMatchObject({ title: 'Null dereference', priority: 0, path: 'src/a.js', startLine: 3, line: 9 });
    expect(parsed.verdict.correctness).toBe('correct');
  });

  test('invalid output: a typed error whose reason names the field', () => {
    const bad = review();
    (bad.findings[0] as Record<string, unknown>).priority = 7;
    (bad.findings[1] as Record<string, unknown>).confidence_score = 'high';
    let error: unknown;
    try {
      parseReviewOutput(`Here you go:\n${JSON.stringify(bad)}`, { workspaceRoot: ROOT });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReviewOutputError);
    expect((error as ReviewOutputError).reason).toBe('findings.0.priority: must be 0, 1, 2 or 3; findings.1.confidence_score: must be a number from 0 to 1');
  });

  test('no object, broken JSON, an unrelated object: each has its own reason', () => {
    const reason = (text: string) => {
      try {
        parseReviewOutput(text, { workspaceRoot: ROOT });
      } catch (e) {
        return (e as ReviewOutputError).reason;
      }
      return 'parsed';
    };
    expect(reason('Looks good to me!')).toBe('the message contains no JSON object');
    expect(reason('{"findings": [,]}')).toBe('the message has text in braces, but none of it is valid JSON');
    expect(reason('{"ok": true}')).toMatch(/^no JSON object in the message has the review fields/);
    expect(reason('{"findings": [], "overall_correctness": "fine"}')).toMatch(/overall_correctness: must be "patch is correct" or "patch is incorrect"/);
  });

  test('an unclosed brace before the object does not hide it; a huge message is searched from its tail', () => {
    expect(parseReviewOutput(`see {this\n${JSON.stringify(review())}`, { workspaceRoot: ROOT }).findings).toHaveLength(2);
    const huge = `${'{'.repeat(20_000)}${' '.repeat(600 * 1024)}${JSON.stringify(review())}`;
    expect(parseReviewOutput(huge, { workspaceRoot: ROOT }).findings).toHaveLength(2);
    // Hostile: half a megabyte of unclosed braces ends with a clear error, not a quadratic scan.
    expect(() => parseReviewOutput('{'.repeat(500_000), { workspaceRoot: ROOT })).toThrow(ReviewOutputError);
  });
});

describe('repoRelativePath', () => {
  test('strips the workspace root; keeps paths that leave it', () => {
    expect(repoRelativePath(`${ROOT}/src/x.ts`, ROOT)).toBe('src/x.ts');
    expect(repoRelativePath('src//y.ts', ROOT)).toBe('src/y.ts');
    expect(repoRelativePath('/etc/passwd', ROOT)).toBe('/etc/passwd');
    expect(repoRelativePath(`${ROOT}-other/a.ts`, ROOT)).toBe(`${ROOT}-other/a.ts`);
    expect(repoRelativePath('../outside.ts', ROOT)).toBe('../outside.ts');
  });
});

describe('restateReviewPrompt', () => {
  test('names the problem and asks for the object only', () => {
    const text = restateReviewPrompt(new ReviewOutputError('the message contains no JSON object'));
    expect(text).toContain('Problem: the message contains no JSON object');
    expect(text).toContain('as the JSON object only');
    expect(text).toContain('"resolved_findings"');
  });
});
