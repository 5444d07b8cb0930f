// What the browser scenarios share: Debian's Chromium with the flags CI
// needs, named steps with their timings, polling with a bound, the
// axe-core scan, and registering through the client's own form. A module of
// its own because each scenario runs as it is loaded.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The longest wait of any one step (a loaded 2-core machine is slow). */
export const T = 45_000;

/** Launches Debian's Chromium (never a downloaded one), headless, with extra flags. */
export function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.PARLEY_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', ...extra],
  });
}

export function fail(msg) { throw new Error(msg); }

/**
 * Steps of a scenario: run(name, fn) runs fn as the current step and logs
 * its time; step() is the step that is running (or failed); timings holds
 * each finished step's milliseconds.
 */
export function steps() {
  const timings = {};
  let current = '';
  return {
    timings,
    step: () => current,
    async run(name, fn) {
      current = name;
      const t0 = Date.now();
      await fn();
      timings[name] = Date.now() - t0;
      console.log(`ok  ${name} (${timings[name]} ms)`);
    },
  };
}

/** Polls fn until it returns a truthy value, or fails after ms. */
export async function until(what, fn, ms = T) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core in page (through the DevTools protocol: the page's CSP
 * stays on), writes its violations to artifacts/file and fails on a
 * serious or critical one.
 */
export async function axeScan(page, artifacts, file, screen) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    // @ts-ignore
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  writeFileSync(join(artifacts, file), JSON.stringify(res, null, 2));
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) fail(`accessibility (${screen}): ${JSON.stringify(bad)}`);
}

/** Registers username through the client's form and waits for the chat list. */
export async function registerIn(page, base, username, name) {
  await page.goto(base + '/register');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', 'correct horse ' + username);
  await page.click('button[type=submit]');
  await page.waitForSelector('#chat-list');
}
