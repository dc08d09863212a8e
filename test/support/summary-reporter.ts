/**
 * Prints one plain closing line, `N passed, N failed, N skipped` (and
 * `, N unhandled errors` when there were any: they fail the run too), after
 * vitest's own summary, so tools that read only the last line can judge a run.
 */
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      if (m.state() === "failed" && [...m.children.allTests()].length === 0) failed++;
    }
    const errors = unhandledErrors.length > 0 ? `, ${unhandledErrors.length} unhandled errors` : "";
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped${errors}\n`);
  }
}
