/**
 * Reads a review agent's final message: the JSON object in Codex's review output shape
 * ({@link ReviewOutput} in contract.ts), found bare, inside a fenced block, or surrounded by prose,
 * and turns it into the TaskResult's `findings` (paths relative to the repository root) and `review`
 * verdict. When the message holds no valid object, {@link ReviewOutputError} says why in one line, and
 * {@link restateReviewPrompt} is the one follow-up the runner sends before it gives up.
 */
import path from 'node:path';
import { ReviewOutput, describeZodError, type ReviewFinding, type ReviewVerdict } from '../contract.ts';

/** Longest final message searched for the JSON object, UTF-16 units (the tail is kept: the object comes last). */
const REVIEW_MESSAGE_MAX_CHARS = 512 * 1024;
/** Characters the object scan may step through in all (bounds the work on hostile messages full of `{`). */
const MAX_SCAN_STEPS = 16_000_000;

/** Why a final message is not a usable review. `reason` is one readable paragraph (no trailing period needed). */
export class ReviewOutputError extends Error {
  /** What was wrong, e.g. `findings.0.priority: must be 0, 1, 2 or 3`. */
  readonly reason: string;

  constructor(reason: string) {
    super(`the review's final message is not a valid review JSON object: ${reason}`);
    this.name = 'ReviewOutputError';
    this.reason = reason;
  }
}

/** A parsed review: the validated object, the TaskResult findings and verdict made from it. */
export interface ParsedReview {
  /** The object as validated (after the normalisations {@link parseReviewOutput} documents). */
  output: ReviewOutput;
  /** One per finding, in the model's order, paths relative to the repository root. */
  findings: ReviewFinding[];
  verdict: ReviewVerdict;
}

/** Options of {@link parseReviewOutput}. */
export interface ParseReviewOptions {
  /** Absolute path of the checkout (the agent's working directory); stripped from absolute paths. */
  workspaceRoot: string;
}

/**
 * Every top-level balanced `{…}` span of `text` (string literals and escapes respected), in order.
 * A `{` that never closes is skipped and the scan goes on after it. The scan stops after
 * {@link MAX_SCAN_STEPS} characters in all (a message of thousands of unclosed braces).
 */
function balancedObjects(text: string): string[] {
  const out: string[] = [];
  let steps = 0;
  let from = 0;
  while (from < text.length && steps < MAX_SCAN_STEPS) {
    const open = text.indexOf('{', from);
    if (open < 0) break;
    let depth = 0;
    let inString = false;
    let end = -1;
    for (let i = open; i < text.length && steps < MAX_SCAN_STEPS; i++, steps++) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{') depth++;
      else if (ch === '}' && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) {
      from = open + 1;
      continue;
    }
    out.push(text.slice(open, end + 1));
    from = end + 1;
  }
  return out;
}

/**
 * Lenient fixes applied before validation, each one a form models trained on Codex's format are known
 * to produce: a missing `priority` taken from a `[P0]`…`[P3]` tag at the start of the title (the tag
 * is then removed from the title, also when `priority` is present); `overall_correctness` compared
 * without case or a final period.
 */
function normalise(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const obj = { ...(value as Record<string, unknown>) };
  if (typeof obj.overall_correctness === 'string') {
    obj.overall_correctness = obj.overall_correctness.trim().toLowerCase().replace(/\.$/, '');
  }
  if (Array.isArray(obj.findings)) {
    obj.findings = obj.findings.map((f: unknown) => {
      if (typeof f !== 'object' || f === null || typeof (f as { title?: unknown }).title !== 'string') return f;
      const finding = { ...(f as Record<string, unknown>) };
      const tag = /^\s*\[P([0-3])\]\s*/i.exec(finding.title as string);
      if (tag) {
        finding.title = (finding.title as string).slice(tag[0].length);
        if (finding.priority === undefined) finding.priority = Number(tag[1]);
      }
      return finding;
    });
  }
  return obj;
}

/**
 * `file` relative to the repository root: an absolute path inside `workspaceRoot` loses that prefix;
 * a relative one is normalised (`./a/../b` → `b`). A path that leaves the checkout (absolute
 * elsewhere, or `../…`) is returned normalised as it is: it matches no file of the diff, so the finding
 * is published as outside the diff rather than dropped.
 */
export function repoRelativePath(file: string, workspaceRoot: string): string {
  const root = path.posix.normalize(workspaceRoot.replace(/\\/g, '/')).replace(/\/+$/, '');
  const p = path.posix.normalize(file.trim().replace(/\\/g, '/'));
  if (path.posix.isAbsolute(p)) {
    return root && p.startsWith(`${root}/`) ? p.slice(root.length + 1) : p;
  }
  return p.replace(/^(\.\/)+/, '');
}

/**
 * Finds and validates the review JSON object in the agent's final message: the LAST balanced object
 * in the text that validates as {@link ReviewOutput} (so a fenced ```json block, a bare object, or an
 * object with prose before and after all work, and an example object earlier in the prose does not
 * win over the real one). Line ranges given backwards are swapped.
 * @param message the final message (only its last {@link REVIEW_MESSAGE_MAX_CHARS} are searched).
 * @returns the validated object with the TaskResult `findings` and `review` verdict made from it.
 * @throws ReviewOutputError naming the problem: no JSON object at all, objects that are not JSON, or
 *   the schema errors of the last object that looks like a review (has `findings` or `overall_*`).
 */
export function parseReviewOutput(message: string, opts: ParseReviewOptions): ParsedReview {
  const text = message.length > REVIEW_MESSAGE_MAX_CHARS ? message.slice(-REVIEW_MESSAGE_MAX_CHARS) : message;
  const candidates = balancedObjects(text);
  if (candidates.length === 0) throw new ReviewOutputError('the message contains no JSON object');
  let lastReviewLike: { issues: string } | undefined;
  let parsedAny = false;
  for (let i = candidates.length - 1; i >= 0; i--) {
    let value: unknown;
    try {
      value = JSON.parse(candidates[i]!);
    } catch {
      continue;
    }
    parsedAny = true;
    const result = ReviewOutput.safeParse(normalise(value));
    if (result.success) return toParsedReview(result.data, opts.workspaceRoot);
    const looksLikeReview =
      typeof value === 'object' && value !== null && ['findings', 'overall_correctness', 'overall_explanation'].some((k) => k in value);
    if (looksLikeReview && !lastReviewLike) lastReviewLike = { issues: describeZodError(result.error).replace(/\n/g, '; ') };
  }
  if (lastReviewLike) throw new ReviewOutputError(lastReviewLike.issues);
  if (!parsedAny) throw new ReviewOutputError('the message has text in braces, but none of it is valid JSON');
  throw new ReviewOutputError('no JSON object in the message has the review fields (findings, overall_correctness, overall_explanation, overall_confidence_score)');
}

function toParsedReview(output: ReviewOutput, workspaceRoot: string): ParsedReview {
  const findings = output.findings.map((f): ReviewFinding => {
    const { start, end } = f.code_location.line_range;
    const [first, last] = start <= end ? [start, end] : [end, start];
    return {
      title: f.title.trim(),
      body: f.body.trim(),
      priority: f.priority,
      path: repoRelativePath(f.code_location.absolute_file_path, workspaceRoot),
      ...(first < last ? { startLine: first } : {}),
      line: last,
      confidence: f.confidence_score,
    };
  });
  const verdict: ReviewVerdict = {
    correctness: output.overall_correctness === 'patch is correct' ? 'correct' : 'incorrect',
    explanation: output.overall_explanation.trim(),
    confidence: output.overall_confidence_score,
    resolvedFindings: [...new Set(output.resolved_findings ?? [])],
  };
  return { output, findings, verdict };
}

/**
 * The one follow-up user message sent when the final message was not a valid review: it names the
 * problem and asks for the JSON object alone. Only the runner's own words and the parser's reason
 * (no model text beyond schema paths) go into it.
 */
export function restateReviewPrompt(error: ReviewOutputError): string {
  return [
    'Your final message could not be read as the review JSON object.',
    `Problem: ${error.reason}`,
    '',
    'Restate your review now as the JSON object only: no prose before or after it, no code fence, no tool calls.',
    'Keep the same findings; do not start the review again. The object must have exactly these fields:',
    '{"findings":[{"title":string,"body":string,"confidence_score":number 0..1,"priority":0|1|2|3,' +
      '"code_location":{"absolute_file_path":string,"line_range":{"start":number,"end":number}}}],' +
      '"overall_correctness":"patch is correct"|"patch is incorrect","overall_explanation":string,' +
      '"overall_confidence_score":number 0..1,"resolved_findings":[string]}',
  ].join('\n');
}
