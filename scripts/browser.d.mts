// Types of scripts/browser.mjs for the TypeScript tests and benchmark.
import type { Server } from 'node:http';
import type { Browser } from 'playwright-core';

export function buildBrowser(options?: { outdir?: string; extraEntries?: Record<string, string> }): Promise<Record<string, number>>;
export function serve(dir: string, port?: number): Promise<Server>;
export const CHROMIUM: string;
export function launchChromium(): Promise<Browser>;
