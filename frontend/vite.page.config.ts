import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The demo page (src/page). `npm run dev` serves it with /api and /ws proxied to the web app at
// PROGRESS_BACKEND (default http://127.0.0.1:8000); `npm run build:page` writes dist/page for
// the web app to serve at "/".
const backend = process.env.PROGRESS_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  root: resolve(import.meta.dirname, "src/page"),
  base: "./",
  plugins: [react()],
  build: {
    outDir: resolve(import.meta.dirname, "dist/page"),
    emptyOutDir: true,
    sourcemap: true,
  },
  server: {
    proxy: {
      "/api": backend,
      "/ws": { target: backend.replace(/^http/, "ws"), ws: true },
    },
  },
});
