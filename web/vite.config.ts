/**
 * Builds the browser client into web/dist, which the server serves at `/`
 * (src/http/static-files.ts). `vite web` runs a dev server that forwards the
 * API and the socket to a server on :3000, so the client reloads on save.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const backend = "http://127.0.0.1:3000";

export default defineConfig({
  base: "/",
  // The client library lives in this repository (client/); web/tsconfig.json maps the same name for tsc.
  resolve: { alias: { "@memchat/client": fileURLToPath(new URL("../client/src/index.ts", import.meta.url)) } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Everything small goes inline, so the server only ever serves text assets.
    assetsInlineLimit: 16_384,
  },
  server: {
    proxy: {
      "/api": backend,
      "/socket.io": { target: backend, ws: true },
    },
  },
});
