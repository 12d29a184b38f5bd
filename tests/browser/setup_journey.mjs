// Drives the password-setup page in Debian's headless Chromium.
// usage: node setup_journey.mjs <journey|expired> <setup link> <app url> <screenshot dir>
// Prints one JSON object with what it saw; exits non-zero on any failed expectation.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [scenario, link, appUrl, shots] = process.argv.slice(2);
if (!scenario || !link || !appUrl || !shots) {
  console.error("usage: node setup_journey.mjs <journey|expired> <link> <app url> <screenshot dir>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const PASSWORD = "correct horse battery staple";
const TIMEOUT = 15000;

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Closed network: no background calls home, no sandbox as root.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = { scenario };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const violations = [];
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
  });
  await page.goto(link);
  await page.getByRole("heading", { name: "Set your password" }).waitFor();
  out.fragment_cleared = !page.url().includes("#");
  out.email_shown = await page.locator("#email-label").textContent();
  await page.screenshot({ path: join(shots, `${scenario}-1-form.png`), fullPage: true });

  if (scenario === "journey") {
    await page.getByLabel("New password").fill(PASSWORD);
    await page.getByLabel("Confirm password").fill(PASSWORD + "x");
    await page.getByRole("button", { name: "Set password and sign in" }).click();
    await page.getByText("The passwords do not match.").waitFor();
    out.mismatch_error = await page.locator("#status").textContent();
    await page.screenshot({ path: join(shots, "journey-2-mismatch.png"), fullPage: true });

    await page.getByLabel("Confirm password").fill(PASSWORD);
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(appUrl)),
      page.getByRole("button", { name: "Set password and sign in" }).click(),
    ]);
    out.landed_on = page.url();
    await page.screenshot({ path: join(shots, "journey-3-signed-in.png"), fullPage: true });
    const cookie = (await context.cookies()).find((c) => c.name === "gatehouse_session");
    expect(cookie, "no session cookie after setup");
    out.cookie = { httpOnly: cookie.httpOnly, secure: cookie.secure, sameSite: cookie.sameSite };
    // The app calls /account/me with the cookie the setup page received.
    out.me = await page.evaluate(async () => {
      const response = await fetch("/account/me", { credentials: "same-origin" });
      return { status: response.status, body: await response.json() };
    });
    // Scripts cannot read the session: the cookie is HttpOnly.
    out.cookie_visible_to_script = await page.evaluate(() => document.cookie.includes("gatehouse_session"));
  } else if (scenario === "expired") {
    await page.getByLabel("New password").fill(PASSWORD);
    await page.getByLabel("Confirm password").fill(PASSWORD);
    await page.getByRole("button", { name: "Set password and sign in" }).click();
    await page.getByRole("button", { name: "Send me a new link" }).waitFor();
    out.link_problem = await page.locator("#link-problem-text").textContent();
    await page.screenshot({ path: join(shots, "expired-2-link-problem.png"), fullPage: true });
    await page.getByRole("button", { name: "Send me a new link" }).click();
    await page.getByText("a new link is on its way").waitFor();
    out.resend_status = await page.locator("#status").textContent();
    await page.screenshot({ path: join(shots, "expired-3-resent.png"), fullPage: true });
    out.url = page.url();
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  out.csp_violations = violations;
  console.log(JSON.stringify(out));
} catch (error) {
  console.error(`${scenario}: ${error.message}`);
  console.log(JSON.stringify({ ...out, error: error.message }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
