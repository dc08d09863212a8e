// Resolves the module names a k6 script imports to the stand-in's modules.
const MODULES = { k6: "k6.ts", "k6/ws": "ws.ts", "k6/http": "http.ts", "k6/metrics": "metrics.ts", "k6/execution": "execution.ts" };

export async function resolve(specifier, context, next) {
  if (specifier === "k6" || specifier.startsWith("k6/")) {
    const file = MODULES[specifier];
    if (!file) throw new Error(`the k6 stand-in has no module '${specifier}'`);
    return next(new URL(`./modules/${file}`, import.meta.url).href, context);
  }
  return next(specifier, context);
}
