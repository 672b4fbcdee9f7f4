// Vite builds the console into dist/, which webui/embed.go embeds in the v9 binary. JSX goes
// through esbuild's automatic runtime (no React plugin needed).
import { defineConfig } from "vitest/config";

declare const process: { env: Record<string, string | undefined> };

export default defineConfig({
  esbuild: { jsx: "automatic" },
  build: {
    outDir: "dist",
    // Keep dist/.gitkeep (the Go embed needs the directory); stale hashed files are removed
    // by the build script.
    emptyOutDir: false,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
    rollupOptions: {
      // TanStack Query marks its modules "use client" for React Server Components; a
      // browser-only bundle has nothing to do with it.
      onwarn(w, warn) {
        if (w.code !== "MODULE_LEVEL_DIRECTIVE") warn(w);
      },
    },
  },
  server: {
    // `npm run dev` proxies the API to a node started with `v9 dev` (API on :7900).
    proxy: { "^/v9\\.": { target: process.env.V9_API ?? "http://127.0.0.1:7900", changeOrigin: true } },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
