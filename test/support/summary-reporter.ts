// Prints one plain closing line, `N passed, N failed, N skipped`, after vitest's own summary: the form CI
// tooling reads regardless of test runner. The line agrees with vitest's exit code: a test that did not run
// because its file's setup failed (a `beforeAll` that threw, an import that failed) counts as failed, and a
// run vitest ends as failed or interrupted never reads `0 failed`.
import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';

export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
}

export function summarize(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<SerializedError>,
  reason: TestRunEndReason,
): Summary {
  const summary: Summary = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
  for (const module of testModules) {
    const moduleFailed = module.state() === 'failed';
    let failedHere = 0;
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') summary.passed++;
      else if (state === 'failed') failedHere++;
      // Skipped by the test's own `.skip` / `.todo`, or because its file failed before it could run.
      else if (moduleFailed && test.options.mode !== 'skip' && test.options.mode !== 'todo') failedHere++;
      else summary.skipped++;
    }
    // A file that failed with no test to blame (it did not load, or failed after its tests).
    summary.failed += moduleFailed && failedHere === 0 ? 1 : failedHere;
  }
  if (reason !== 'passed' && summary.failed === 0) summary.failed = 1;
  return summary;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    const { passed, failed, skipped } = summarize(testModules, unhandledErrors, reason);
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
