// Plays an HLS page in Debian's headless Chromium and prints what the page reported (JSON).
// Usage: node play_hls.mjs URL [TIMEOUT_SECONDS]
// The page (served by the Rust test) plays the playlist with hls.js and sets `window.done`
// to {ended, duration, currentTime, stalls, errors} when the video ends or fails.
import { chromium } from 'playwright-core';

const [url, timeout = '120'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // Without the background-networking flags Chromium keeps calling out of a closed network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.done, null, { timeout: Number(timeout) * 1000 });
  const done = await page.evaluate(() => window.done);
  console.log(JSON.stringify({ ...done, logs }));
} finally {
  await browser.close();
}
