// A VU worker's first module: TypeScript for the stand-in, then k6's module names, then the VU itself.
import { register } from "node:module";
import { register as registerTsx } from "tsx/esm/api";

registerTsx();
register(new URL("./module-hooks.mjs", import.meta.url));
await import(new URL("./vu.ts", import.meta.url).href);
