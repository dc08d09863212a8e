// Types of env.js for the TypeScript tests that import it; k6 never reads this file.
export declare function str(name: string, fallback: string): string;
export declare function str(name: string, fallback?: string): string | undefined;
export declare function int(name: string, fallback: number, min?: number): number;
export declare function bool(name: string, fallback: boolean): boolean;
export declare function parseDurationMs(text: string): number;
export declare function durationMs(name: string, fallback: string): number;
export declare function wholeSeconds(ms: number): number;
export declare function k6Duration(ms: number): string;
export declare function baseUrl(): string;
export declare function runId(): string;
export declare function thresholds(defaults: Record<string, string[]>): Record<string, string[]>;
