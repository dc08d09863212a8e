/**
 * zod with `.openapi(name)`: a named schema becomes one entry under
 * components/schemas of the OpenAPI and AsyncAPI documents, referenced
 * wherever it is nested, instead of being copied into every use. The
 * extension adds a method to zod's prototype once; parsing is unchanged.
 */
import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";

extendZodWithOpenApi(z);

export { z };
