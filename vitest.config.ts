import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["*/test/**/*.test.ts", "test/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start fleets of real processes; running files in parallel on a
    // 2-core machine only makes every one of them slower.
    fileParallelism: false,
  },
});
