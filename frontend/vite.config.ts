/// <reference types="vitest/config" />
import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Library build (dist/lib, what `npm pack` ships): two entry points, "." (framework-free client)
// and "./react" (hooks). React and @msgpack/msgpack stay external: the app's own copies are used
// (msgpack is a dependency, loaded only by clients that ask for format "msgpack").
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist/lib",
    sourcemap: true,
    lib: {
      entry: {
        index: resolve(import.meta.dirname, "src/index.ts"),
        react: resolve(import.meta.dirname, "src/react/index.ts"),
      },
      formats: ["es"],
    },
    rollupOptions: {
      external: ["react", "react-dom", "react/jsx-runtime", "@msgpack/msgpack"],
    },
  },
  test: {
    include: ["test/**/*.test.{ts,tsx}"],
    environment: "node",
    testTimeout: 20_000,
  },
});
