/**
 * Debian's Chromium, headless, driven by playwright-core (which downloads no browser of its
 * own here). scripts/install-chromium.sh --check finds it (or names the fix); a missing
 * browser is an error that names the script, never a skipped test.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import type { Browser } from "playwright-core";

const script = fileURLToPath(new URL("../../scripts/install-chromium.sh", import.meta.url));

/** The path of a Chromium that runs here; rejects with the script's advice when there is none. */
export async function chromiumPath(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)("bash", [script, "--check"]);
    return stdout.trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(`no headless Chromium for the dashboard test; run: bash scripts/install-chromium.sh (as root)\n${stderr}`);
  }
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: await chromiumPath(), args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
}
